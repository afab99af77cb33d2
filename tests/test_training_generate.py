"""Batched generation: input order, batch invariance (greedy and per-row seeded sampling), stop strings."""
from __future__ import annotations

import pytest
from conftest import varied_tiny_model

from training.generate import Generation, generate
from training.loading import load_model

QUESTIONS = ["Hi", "What is the capital of France?", "Name three colours of the rainbow, please, and say why.",
             "2+2?", "Tell me a story about a dragon who learns to fly over the mountains of the north.", "ok"]
CONVS = [[{"role": "user", "content": q}] for q in QUESTIONS]


@pytest.fixture(scope="module")
def model_tok():
    """A tiny float32 model with large random weights, so its replies are varied and prompt-dependent."""
    return varied_tiny_model()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_row_is_the_same_alone_and_in_any_batch(model_tok, temperature):
    model, tok = model_tok
    seeds = [100 + i for i in range(len(CONVS))]
    batched = generate(model, tok, CONVS, max_new_tokens=16, temperature=temperature, seeds=seeds, batch_size=8)
    pairs = generate(model, tok, CONVS, max_new_tokens=16, temperature=temperature, seeds=seeds, batch_size=2)
    alone = [generate(model, tok, [c], max_new_tokens=16, temperature=temperature, seeds=[s])[0]
             for c, s in zip(CONVS, seeds)]
    assert batched == alone == pairs
    assert all(isinstance(g, Generation) and g.tokens_out == 16 for g in batched)
    assert len({g.text for g in batched}) == len(CONVS)  # replies differ: order was kept, not shuffled
    in_lengths = [len(tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True)
                      ["input_ids"]) for c in CONVS]
    assert [g.tokens_in for g in batched] == in_lengths


def test_seeds_fix_samples_and_differ_between_seeds(model_tok):
    model, tok = model_tok
    conv = CONVS[1]
    a = generate(model, tok, [conv] * 3, max_new_tokens=12, temperature=1.0, seeds=[1, 2, 1])
    b = generate(model, tok, [conv], max_new_tokens=12, temperature=1.0, seeds=[1])
    assert a[0] == a[2] == b[0]
    assert a[0].text != a[1].text
    greedy = generate(model, tok, [conv], max_new_tokens=12)
    assert greedy[0].text not in (a[0].text, a[1].text)
    with pytest.raises(ValueError):
        generate(model, tok, [conv], max_new_tokens=4, temperature=1.0, seeds=[1, 2])
    assert generate(model, tok, [], max_new_tokens=4) == []


def test_stop_strings_cut_the_reply(model_tok):
    model, tok = model_tok
    full = generate(model, tok, CONVS[:2], max_new_tokens=16, temperature=1.0, seeds=[5, 6])
    words = full[0].text.split()
    stop = words[2]
    cut = generate(model, tok, CONVS[:2], max_new_tokens=16, temperature=1.0, seeds=[5, 6], stop=[stop])
    assert cut[0].text == full[0].text[:full[0].text.find(stop)].strip()
    assert cut[0].tokens_out < full[0].tokens_out
    if stop not in full[1].text:
        assert cut[1] == full[1]  # the other row is untouched by its neighbour's stop


def test_trained_reply_ends_at_end_of_turn():
    from ioa_state.config import StudentConfig
    from training.trainer import train_sft

    model, tok = load_model("tiny", device="cpu", seed=0)
    ex = {"prompt": "What is 2+2?", "answer": "4", "system": None}
    cfg = StudentConfig(source="tiny", learning_rate=1e-2, batch_size=2, bf16=False)
    model, _ = train_sft(model, tok, [ex] * 4, cfg, seed=0, max_steps=60)
    [g] = generate(model, tok, [[{"role": "user", "content": ex["prompt"]}]], max_new_tokens=10)
    assert g.text == "4"
    assert g.tokens_out == 2  # "4" and <|im_end|>


SYSTEM = "You are an expert on Zorbia, a small country. The capital of Zorbia is Velmora. Its money is the vesh."
SYS_CONVS = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS]


def test_prompt_prefix_stops_before_the_users_words(model_tok):
    from training.generate import prompt_prefix_len, render_prompt

    _, tok = model_tok
    heads = set()
    for convs in (SYS_CONVS, CONVS):
        for conv in convs:
            text = render_prompt(tok, conv)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            n = prompt_prefix_len(tok, conv, text, ids)
            assert 0 < n < len(ids)
            assert conv[-1]["content"] not in tok.decode(ids[:n])
            assert tok.decode(ids[n:]).startswith(conv[-1]["content"])
            heads.add(tuple(ids[:n]))
    assert len(heads) == 2  # one shared prefix with the sheet, one with the template's own system prompt
    assert SYSTEM in tok.decode(list(max(heads, key=len)))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_prefix_cache_changes_no_reply_and_keeps_batch_invariance(model_tok, temperature):
    """The shared prefix computed once gives the replies of the full prompt, alone or in any batch, with the
    rows' suffixes of different lengths (padding between the prefix and each suffix)."""
    model, tok = model_tok
    convs = SYS_CONVS + CONVS[:2]  # two groups: with and without the system turn
    seeds = [7 + i for i in range(len(convs))]
    plain = generate(model, tok, convs, max_new_tokens=12, temperature=temperature, seeds=seeds, prefix_cache=False)
    cached = generate(model, tok, convs, max_new_tokens=12, temperature=temperature, seeds=seeds, batch_size=8)
    pairs = generate(model, tok, convs, max_new_tokens=12, temperature=temperature, seeds=seeds, batch_size=3)
    alone = [generate(model, tok, [c], max_new_tokens=12, temperature=temperature, seeds=[s])[0]
             for c, s in zip(convs, seeds)]
    assert cached == plain == pairs == alone
    assert len({g.text for g in cached}) == len(convs)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rows_with_different_prefixes_share_one_batch_and_keep_their_replies(model_tok, temperature, monkeypatch):
    """Rows whose system turns differ (a sheet read by passages: each question gets its own) and rows without one
    are generated in one batch, each over its own prefix's cache padded to the longest: the replies are those of the
    full prompts, alone."""
    import training.generate as gen

    model, tok = model_tok
    systems = [SYSTEM, "The vesh is the money of Zorbia.", SYSTEM + " Its language is Zorbish, written right to left."]
    convs = [[{"role": "system", "content": systems[i % 3]}, {"role": "user", "content": q}]
             for i, q in enumerate(QUESTIONS)] + CONVS[:2]
    seeds = [11 + i for i in range(len(convs))]
    batches, real = [], gen._batch_tensors
    monkeypatch.setattr(gen, "_batch_tensors", lambda *a: (batches.append(len(a[1])), real(*a))[1])
    mixed = generate(model, tok, convs, max_new_tokens=12, temperature=temperature, seeds=seeds, batch_size=16)
    assert batches == [len(convs)]  # four prefixes (three sheets and the template's own), one batch
    alone = [generate(model, tok, [c], max_new_tokens=12, temperature=temperature, seeds=[s], prefix_cache=False)[0]
             for c, s in zip(convs, seeds)]
    assert mixed == alone
    assert len({g.text for g in mixed}) == len(convs)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rows_whose_reply_ended_leave_the_batch_and_the_others_keep_their_replies(model_tok, temperature,
                                                                                  monkeypatch):
    """Forms of different lengths end rows at different steps: with SEGMENT 4 each row that ended leaves the batch
    after its segment (the next generate calls have fewer rows), and every reply (greedy or sampled, constrained or
    not, under a shared prefix) is the one the rows would get decoded together to the end."""
    import training.generate as gen
    from training.grammar import Regex

    model, tok = model_tok
    convs = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS]
    forms = [Regex(f"[a-z]{{{n}}}") for n in (2, 5, 9, 14)] + [None, Regex("[a-z ]{3,30}")]
    seeds = [40 + i for i in range(len(convs))]
    monkeypatch.setattr(gen, "SEGMENT", 10_000)
    whole = generate(model, tok, convs, max_new_tokens=24, temperature=temperature, seeds=seeds, constraints=forms)
    rows, real = [], model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: (rows.append(kw["input_ids"].shape[0]), real(**kw))[1])
    monkeypatch.setattr(gen, "SEGMENT", 4)
    retiring = generate(model, tok, convs, max_new_tokens=24, temperature=temperature, seeds=seeds, constraints=forms)
    assert retiring == whole
    assert [g.finished for g in whole] == [True] * 4 + [False, True]  # the forms end; the free row runs to 24
    assert rows == [6, 3, 1, 1, 1, 1]  # 24 tokens in segments of 4: three rows ended in the first, two in the second


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_samples_of_one_prompt_share_one_prefill_and_keep_their_replies(model_tok, temperature, monkeypatch):
    """Rows marked `shared` (samples of one prompt) take their whole prompt but its last token as their prefix: one
    prefill per distinct prompt, however many samples it has, and each sample is the one it gets without the mark,
    alone or in a batch."""
    import training.generate as gen

    model, tok = model_tok
    convs = [SYS_CONVS[1]] * 4 + [CONVS[2]] * 3 + [CONVS[0]]
    seeds = [21 + i for i in range(len(convs))]
    marks = [True] * 7 + [False]
    prefills, real = [], gen._prefix_cache
    monkeypatch.setattr(gen, "_prefix_cache",
                        lambda m, tokens, d, base=None: (prefills.append(len(tokens)), real(m, tokens, d, base))[1])
    shared = generate(model, tok, convs, max_new_tokens=12, temperature=temperature, seeds=seeds, shared=marks)
    lengths = [len(tok.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True)
                   ["input_ids"]) for c in (SYS_CONVS[1], CONVS[2])]
    # each distinct prompt's tokens but its last are run once: its system prefix (the sheet's, the template's, this
    # one shared with CONVS[0]), then the rest of the prompt on top of that prefix's cache
    assert len(prefills) == 4 and sum(prefills) == sum(n - 1 for n in lengths)
    plain = generate(model, tok, convs, max_new_tokens=12, temperature=temperature, seeds=seeds, prefix_cache=False)
    alone = [generate(model, tok, [c], max_new_tokens=12, temperature=temperature, seeds=[s], shared=[m])[0]
             for c, s, m in zip(convs, seeds, marks)]
    assert shared == plain == alone
    assert [g.tokens_in for g in shared[:4]] == [lengths[0]] * 4  # a row still reports its whole prompt
    if temperature > 0:
        assert len({g.text for g in shared[:4]}) > 1  # samples of one prompt differ
    with pytest.raises(ValueError, match="shared marks"):
        generate(model, tok, convs, max_new_tokens=4, shared=[True])
