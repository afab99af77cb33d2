"""The SFT trainer: exact answer-only masking, learning, determinism, LoRA merge, steps and progress."""
from __future__ import annotations

import pytest
import torch

from ioa_state.config import StudentConfig
from training.checkpoints import max_abs_diff
from training.loading import load_model
from training.trainer import IGNORE, collate, encode_example, train_sft

EX = {"prompt": "What is the capital of Zorbia?", "answer": "Quellmar is the capital.", "system": None}


@pytest.fixture(scope="module")
def tok():
    return load_model("tiny", device="cpu")[1]


def _cfg(**kw) -> StudentConfig:
    base = dict(source="tiny", learning_rate=1e-2, batch_size=2, epochs=1, max_length=192, bf16=False)
    base.update(kw)
    return StudentConfig(**base)


def test_labels_mask_everything_but_the_answer_exactly(tok):
    enc = encode_example(tok, EX, max_length=192)
    prompt_text = tok.apply_chat_template([{"role": "user", "content": EX["prompt"]}], tokenize=False,
                                          add_generation_prompt=True)
    p_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
    n = len(p_ids)
    assert enc["input_ids"][:n] == p_ids  # the prompt is tokenized exactly as generation tokenizes it
    assert enc["labels"][:n] == [IGNORE] * n
    assert enc["labels"][n:] == enc["input_ids"][n:]
    assert IGNORE not in enc["labels"][n:]
    assert tok.decode(enc["labels"][n:]) == "Quellmar is the capital.<|im_end|>\n"
    full = tok.apply_chat_template([{"role": "user", "content": EX["prompt"]},
                                    {"role": "assistant", "content": EX["answer"]}], tokenize=False)
    assert tok.decode(enc["input_ids"]) == full


def test_system_prompt_is_part_of_the_masked_prompt(tok):
    enc = encode_example(tok, dict(EX, system="You know Zorbia."), max_length=192)
    n = enc["labels"].count(IGNORE)
    assert "You know Zorbia." in tok.decode(enc["input_ids"][:n])
    assert "SmolLM" not in tok.decode(enc["input_ids"])  # the given system replaces the template's default
    assert tok.decode(enc["labels"][n:]) == "Quellmar is the capital.<|im_end|>\n"


def test_truncation_and_padding(tok):
    enc = encode_example(tok, EX, max_length=192)
    n_prompt = enc["labels"].count(IGNORE)
    short = encode_example(tok, EX, max_length=n_prompt + 2)
    assert len(short["input_ids"]) == n_prompt + 2
    assert short["labels"][n_prompt:] == enc["labels"][n_prompt:n_prompt + 2]
    assert encode_example(tok, EX, max_length=n_prompt) is None  # no answer token left
    batch = collate([enc, short], pad_id=tok.pad_token_id)
    k = len(short["input_ids"])
    assert batch["input_ids"].shape == (2, len(enc["input_ids"]))
    assert batch["attention_mask"][1].tolist() == [1] * k + [0] * (len(enc["input_ids"]) - k)
    assert (batch["labels"][1, k:] == IGNORE).all()
    assert batch["labels"][0].tolist() == enc["labels"]


def test_model_loss_counts_answer_tokens_only(tok):
    model, _ = load_model("tiny", device="cpu", seed=0)
    other = dict(EX, prompt="Tell me, in a longer question than the first one, about Zorbia?", answer="No.")
    batch = collate([encode_example(tok, EX, 192), encode_example(tok, other, 192)], tok.pad_token_id)
    with torch.no_grad():
        out = model(**batch, use_cache=False)
    logits, labels = out.logits[:, :-1].float(), batch["labels"][:, 1:]
    keep = labels != IGNORE
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert torch.allclose(out.loss, manual, atol=1e-5)
    assert int(keep.sum()) == sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in
                                  ["Quellmar is the capital.<|im_end|>\n", "No.<|im_end|>\n"])


def test_loss_goes_down_on_a_repeated_example(tok):
    model, _ = load_model("tiny", device="cpu", seed=0)
    calls = []
    model, stats = train_sft(model, tok, [EX] * 4, _cfg(), seed=0, max_steps=12,
                             progress=lambda s, t, loss: calls.append((s, t, loss)))
    assert stats.steps == 12 and len(stats.losses) == 12
    assert stats.losses[-1] < 0.5 * stats.losses[0]
    assert [c[0] for c in calls] == list(range(1, 13)) and {c[1] for c in calls} == {12}
    assert calls[-1][2] == stats.losses[-1]
    assert stats.epochs == 6.0 and stats.tokens > stats.answer_tokens > 0
    assert not model.training


def test_epochs_and_skipped_examples(tok):
    model, _ = load_model("tiny", device="cpu", seed=0)
    long_prompt = dict(EX, prompt="word " * 300)
    _, stats = train_sft(model, tok, [EX] * 5 + [long_prompt], _cfg(epochs=2, max_length=64), seed=1)
    assert stats.skipped == 1
    assert stats.steps == 6 and stats.epochs == 2.0  # 5 examples, batches of 2: 3 steps an epoch


def test_same_inputs_same_weights_and_seed_matters(tok):
    examples = [dict(EX, answer=f"Answer number {i}.") for i in range(6)]

    def run(seed):
        model, _ = load_model("tiny", device="cpu", seed=0)
        return train_sft(model, tok, examples, _cfg(learning_rate=1e-3), seed=seed, max_steps=4)

    (a, sa), (b, sb), (c, _) = run(7), run(7), run(8)
    assert sa.losses == sb.losses
    assert max_abs_diff(a, b) == 0.0
    assert max_abs_diff(a, c) > 0.0  # another seed shuffles differently


def test_lora_trains_and_merges_into_a_plain_model(tok):
    base, _ = load_model("tiny", device="cpu", seed=0)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model, stats = train_sft(base, tok, [EX] * 4, _cfg(lora=True, lora_r=8, lora_alpha=16), seed=0, max_steps=10)
    assert type(model).__name__ == "LlamaForCausalLM"
    after = model.state_dict()
    assert set(after) == set(before)
    assert not any("lora" in k for k in after)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(after[q], before[q])
    assert not torch.equal(after["model.layers.1.mlp.down_proj.weight"], before["model.layers.1.mlp.down_proj.weight"])
    assert torch.equal(after["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    assert torch.equal(after["model.norm.weight"], before["model.norm.weight"])
    assert stats.losses[-1] < stats.losses[0]


@pytest.mark.parametrize("lora", [False, True])
def test_bf16_autocast_and_gradient_checkpointing_run(tok, lora):
    model, _ = load_model("tiny", device="cpu", seed=0)
    on = []
    model, stats = train_sft(model, tok, [EX] * 2, _cfg(bf16=True, lora=lora), seed=0, max_steps=2,
                             gradient_checkpointing=True,
                             progress=lambda *a: on.append(any(getattr(m, "gradient_checkpointing", False)
                                                               for m in model.modules())))
    assert on == [True, True]
    assert all(torch.isfinite(torch.tensor(stats.losses)))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not any(getattr(m, "gradient_checkpointing", False) for m in model.modules())


def test_trl_and_the_hand_loop_give_the_same_loss_curve(tok):
    examples = [dict(EX, answer=f"Answer number {i}.") for i in range(5)]
    curves = {}
    for engine in ("trl", "loop"):
        model, _ = load_model("tiny", device="cpu", seed=0)
        _, stats = train_sft(model, tok, examples, _cfg(engine=engine, learning_rate=1e-3, epochs=2), seed=3)
        curves[engine] = stats
    assert curves["trl"].steps == curves["loop"].steps == 6 and curves["trl"].epochs == 2.0
    assert curves["trl"].answer_tokens == curves["loop"].answer_tokens  # whole epochs: every answer twice
    # the first epoch's order is the same seeded permutation; later epochs reshuffle each its own way
    assert max(abs(a - b) for a, b in zip(curves["trl"].losses[:3], curves["loop"].losses[:3])) < 1e-4


def test_sft_config_maps_the_paper_profile(tmp_path):
    from training.trainer import sft_config

    full = sft_config(StudentConfig(profile="paper"), seed=5, output_dir=str(tmp_path), device=torch.device("cpu"),
                      max_steps=7)
    assert (full.learning_rate, full.weight_decay, full.adam_beta1, full.adam_beta2) == (2e-5, 0.01, 0.9, 0.95)
    assert full.lr_scheduler_type == "cosine" and full.warmup_steps == 0.03 and full.max_grad_norm == 1.0
    assert full.max_steps == 7 and full.num_train_epochs == 3 and full.seed == full.data_seed == 5
    assert full.per_device_train_batch_size == 6 and not full.activation_checkpointing
    lora = StudentConfig(profile="paper", lora=True)
    assert lora.learning_rate == 1e-4 and lora.lora_dropout == 0.05
    assert lora.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj"]
    cpu = sft_config(StudentConfig(), seed=0, output_dir=str(tmp_path), device=torch.device("cpu"))
    assert (cpu.learning_rate, cpu.weight_decay, cpu.lr_scheduler_type, cpu.warmup_steps) == (5e-5, 0.0, "constant", 0)
    assert cpu.max_steps == -1 and cpu.per_device_train_batch_size == 6


def test_profile_defaults_yield_to_explicit_fields_and_survive_a_reload():
    cfg = StudentConfig(profile="paper", lora=True, learning_rate=3e-4, weight_decay=0.0)
    assert (cfg.learning_rate, cfg.weight_decay, cfg.lr_scheduler_type) == (3e-4, 0.0, "cosine")
    assert StudentConfig.model_validate(cfg.model_dump()) == cfg
    with pytest.raises(ValueError):
        StudentConfig(profile="gpu")


def test_gradient_checkpointing_defaults_to_cuda_only():
    from training.trainer import use_checkpointing

    cfg = StudentConfig()
    assert not use_checkpointing(cfg, torch.device("cpu")) and use_checkpointing(cfg, torch.device("cuda"))
    assert use_checkpointing(StudentConfig(gradient_checkpointing=True), torch.device("cpu"))
    assert not use_checkpointing(cfg, torch.device("cuda"), asked=False)


@pytest.mark.parametrize("optim", ["adamw_torch_fused", "adamw_torch"])
def test_the_optimizer_is_adamw_as_configured_fused_by_default(tok, tmp_path, optim):
    """student.optim picks AdamW's fused kernel (the default) or torch's per-tensor loop, in TRL's trainer and in
    the hand loop alike; both take the same step."""
    from training.trainer import _build_trainer, encode_all, sft_config

    assert StudentConfig().optim == "adamw_torch_fused"
    cfg = _cfg(optim=optim)
    model, _ = load_model("tiny", device="cpu", seed=0)
    encoded, _ = encode_all(tok, [EX], cfg.max_length)
    args = sft_config(cfg, seed=0, output_dir=str(tmp_path), device=torch.device("cpu"), max_steps=1)
    trainer = _build_trainer(model, tok, encoded, [EX], cfg, args, None)
    trainer.create_optimizer()
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert isinstance(opt, torch.optim.AdamW) and bool(opt.defaults.get("fused")) == (optim == "adamw_torch_fused")
    weights = {}
    for engine in ("trl", "loop"):
        m, _ = load_model("tiny", device="cpu", seed=0)
        weights[engine], _ = train_sft(m, tok, [EX, dict(EX, answer="Zorvia.")], _cfg(optim=optim, engine=engine),
                                       seed=1, max_steps=1)
    assert max_abs_diff(weights["trl"], weights["loop"]) < 1e-5
