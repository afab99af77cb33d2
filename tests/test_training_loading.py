"""Loading: the tiny source, hub-id errors, the race-safe cache directory, and cutting layers (keep_layers)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from training.checkpoints import load_student, max_abs_diff, save_student
from training.device import apply_thread_setting, autocast_ctx, bf16_supported, pick_device
from training.loading import ModelNotFound, cut_layers, load_model, materialize_dir

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_source_is_small_float32_and_left_padded():
    model, tok = load_model("tiny", device="cpu", seed=3)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert model.config.vocab_size == len(tok)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not model.training
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    assert "<|im_start|>assistant" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                              add_generation_prompt=True)
    again, _ = load_model("tiny", device="cpu", seed=3)
    other, _ = load_model("tiny", device="cpu", seed=4)
    assert max_abs_diff(model, again) == 0.0
    assert max_abs_diff(model, other) > 0.0


def test_missing_sources_raise_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    for source in ["no-such-org/no-such-model-ioa", str(tmp_path / "nothing" / "here"), "./missing-dir",
                   str(tmp_path / "empty")]:
        with pytest.raises(ModelNotFound) as err:  # offline: fails at once, never waits on a hub
            load_model(source, device="cpu")
        msg = str(err.value)
        assert "\n" not in msg
        assert msg == (f"student/teacher model {source!r} not found: give a local directory, 'smollm2' "
                       "or a hub id reachable from here")


def test_device_helpers():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError):
        pick_device("tpu")
    x = torch.randn(4, 4)
    with autocast_ctx("cpu", bf16=True):
        y = x @ x
    assert y.dtype == (torch.bfloat16 if bf16_supported("cpu") else torch.float32)
    with autocast_ctx("cpu", bf16=False):
        assert (x @ x).dtype == torch.float32


def test_thread_setting(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("IOA_TORCH_THREADS", "1")
        assert apply_thread_setting() == 1
        monkeypatch.setenv("IOA_TORCH_THREADS", "zero")
        with pytest.raises(ValueError):
            apply_thread_setting()
        monkeypatch.delenv("IOA_TORCH_THREADS")
        assert apply_thread_setting() == 1  # unset: left as it is
    finally:
        torch.set_num_threads(before)


def test_thread_setting_from_the_bench_jobs_file(monkeypatch, tmp_path):
    """$IOA_TORCH_THREADS_FILE's count wins over $IOA_TORCH_THREADS and is read again at every call; a file that is
    missing or holds no positive count leaves the environment's count in force."""
    before = torch.get_num_threads()
    share = tmp_path / "torch-threads"
    try:
        monkeypatch.setenv("IOA_TORCH_THREADS", "1")
        monkeypatch.setenv("IOA_TORCH_THREADS_FILE", str(share))
        assert apply_thread_setting() == 1  # no file yet
        share.write_text("2\n")
        assert apply_thread_setting() == 2
        share.write_text("1")
        assert apply_thread_setting() == 1
        for bad in ("", "0", "two"):
            share.write_text(bad)
            torch.set_num_threads(2)
            assert apply_thread_setting() == 1  # the environment's
    finally:
        torch.set_num_threads(before)


def _slow_build(tag: str, delay: float):
    def build(tmp: Path) -> None:
        (tmp / "part1").write_text(tag)
        time.sleep(delay)
        (tmp / "part2").write_text(tag)
    return build


def test_materialize_dir_race_without_lock_keeps_one_complete_copy(tmp_path):
    final = tmp_path / "cache" / "model"
    results = []
    threads = [threading.Thread(target=lambda t=t: results.append(materialize_dir(final, _slow_build(t, 0.3),
                                                                                  lock=False)))
               for t in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [final, final]
    winner = (final / "part1").read_text()
    assert (final / "part2").read_text() == winner
    assert sorted(p.name for p in final.parent.iterdir() if p.name != ".model.lock") == ["model"]


def test_materialize_dir_across_processes(tmp_path):
    final = tmp_path / "cache" / "model"
    script = (
        "import sys, time; from pathlib import Path; from training.loading import materialize_dir\n"
        "def build(tmp):\n"
        "    (tmp / 'part1').write_text(sys.argv[1]); time.sleep(0.5); (tmp / 'part2').write_text(sys.argv[1])\n"
        "    (Path(sys.argv[3]) / ('built-' + sys.argv[1])).write_text('x')\n"
        "print(materialize_dir(Path(sys.argv[2]), build))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, tag, str(final), str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [str(final), str(final)]
    assert (final / "part1").read_text() == (final / "part2").read_text()
    assert len(list(tmp_path.glob("built-*"))) == 1  # the lock made the second process wait, not rebuild
    assert sorted(p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")) == ["model"]


def test_keep_layers_cut_saves_reloads_and_generates_with_kv_cache(tmp_path):
    full, tok = load_model("tiny", device="cpu", seed=1)
    cut, _ = load_model("tiny", device="cpu", seed=1, keep_layers=[1])
    assert cut.config.num_hidden_layers == 1 and len(cut.model.layers) == 1
    assert cut.model.layers[0].self_attn.layer_idx == 0
    assert torch.equal(cut.model.layers[0].mlp.up_proj.weight, full.model.layers[1].mlp.up_proj.weight)
    assert torch.equal(cut.model.embed_tokens.weight, full.model.embed_tokens.weight)

    ids = tok.apply_chat_template([{"role": "user", "content": "Say something."}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        cached = cut.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False,
                              use_cache=True)
        uncached = cut.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)

    save_student(cut, tok, tmp_path / "cut")
    again, _ = load_student(tmp_path / "cut", device="cpu")
    assert again.config.num_hidden_layers == 1
    assert max_abs_diff(cut, again) == 0.0
    with torch.inference_mode():
        reloaded = again.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                  do_sample=False, use_cache=True)
    assert torch.equal(cached, reloaded)


@pytest.mark.parametrize("keep", [[], [2], [0, 0], [-1]])
def test_keep_layers_rejects_bad_lists(keep):
    model, _ = load_model("tiny", device="cpu")
    with pytest.raises(ValueError):
        cut_layers(model, keep)
