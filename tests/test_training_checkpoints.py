"""Checkpoints: atomic save with a content hash, reload to identical weights and replies, replacement in place."""
from __future__ import annotations

import torch

from training.checkpoints import hash_student, load_student, max_abs_diff, save_student, weights_equal
from training.generate import generate
from training.loading import load_model

CONV = [[{"role": "user", "content": "Hello there"}]]


def test_save_load_roundtrip_with_hash(tmp_path):
    model, tok = load_model("tiny", device="cpu", seed=2)
    path = tmp_path / "student" / "round-1"
    digest = save_student(model, tok, path)
    assert len(digest) == 64 and digest == hash_student(path)
    names = {p.name for p in path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= names
    assert [p.name for p in path.parent.iterdir()] == ["round-1"]  # no temporary left behind

    again, tok2 = load_student(path, device="cpu")
    assert weights_equal(model, again) and max_abs_diff(model, again) == 0.0
    assert tok2.padding_side == "left" and tok2.pad_token_id == tok.pad_token_id
    assert generate(model, tok, CONV, max_new_tokens=8, temperature=1.0, seeds=[3]) == \
        generate(again, tok2, CONV, max_new_tokens=8, temperature=1.0, seeds=[3])

    assert save_student(again, tok2, tmp_path / "copy") == digest  # same weights, same hash


def test_replacing_a_checkpoint_changes_its_hash(tmp_path):
    model, tok = load_model("tiny", device="cpu", seed=2)
    path = tmp_path / "student"
    first = save_student(model, tok, path)
    with torch.no_grad():
        model.model.norm.weight.add_(1e-3)
    assert not weights_equal(model, load_student(path, device="cpu")[0])
    second = save_student(model, tok, path)
    assert second != first and second == hash_student(path)
    assert weights_equal(model, load_student(path, device="cpu")[0])
    assert [p.name for p in tmp_path.iterdir()] == ["student"]
