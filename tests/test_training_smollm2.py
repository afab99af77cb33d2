"""The packaged SmolLM2-135M-Instruct through the converted cache (slow: converts the GGUF once, ~20 s)."""
from __future__ import annotations

import pytest

from training.generate import generate
from training.loading import load_model, smollm2_dir

pytestmark = pytest.mark.slow


def test_smollm2_answers_the_capital_of_france_greedily():
    smollm2_dir()  # first use converts; later loads read the cache
    model, tok = load_model("smollm2", device="cpu")  # from the converted cache (benchmarks measure its speed)
    assert model.config.num_hidden_layers == 30
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    [g] = generate(model, tok, [[{"role": "user", "content": "What is the capital of France?"}]], max_new_tokens=24)
    assert "Paris" in g.text
    assert 0 < g.tokens_out <= 24


def test_smollm2_cut_every_fifth_layer():
    model, tok = load_model("smollm2", device="cpu", keep_layers=list(range(0, 30, 5)))
    assert model.config.num_hidden_layers == 6
    assert 49e6 < sum(p.numel() for p in model.parameters()) < 50e6
    [g] = generate(model, tok, [[{"role": "user", "content": "Hi"}]], max_new_tokens=6)
    assert 0 < g.tokens_out <= 6
