"""Progress of long steps: the callbacks fire with the right counts (teacher batches, exam generation, training
steps), a terminal gets a tqdm bar (done of total, tok/s, time left), and a stream that is not a terminal gets no
bar text at all."""
from __future__ import annotations

import io

import pytest
from openai_server import OpenAIServer, scripted

from agents import progress
from agents.teacher import Teacher, TeacherRequest
from ioa_state.config import StudentConfig, TeacherConfig


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _reqs(names):
    return [TeacherRequest([{"role": "user", "content": n}], 0.7, 16) for n in names]


def test_teacher_hook_counts_every_finished_call_of_a_batch(tmp_path, capsys):
    calls: list[tuple[int, int, int]] = []
    with OpenAIServer(scripted(["one two three"]), models=["m"]) as srv:
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, timeout_s=5, concurrency=3)
        t = Teacher(cfg, tmp_path, progress=lambda *a: calls.append(a))
        first = t.ask(_reqs(["a", "b", "c"]))
        assert sorted(calls) == [(0, 3, 0), (1, 3, 3), (2, 3, 3), (3, 3, 3)]  # three paid, 3 tokens out each
        calls.clear()
        t.ask(_reqs(["a", "d", "d"]))  # a cached, d paid once, its copy served from it
        assert calls == [(0, 3, 0), (1, 3, 0), (2, 3, 3), (3, 3, 0)]
        assert all(r.tokens_out == 3 for r in first)
        # the run's own hook: a bar per batch on stderr, which is not a terminal here
        t2 = Teacher(cfg, tmp_path / "other", progress=progress.teacher_progress())
        t2.ask(_reqs(["x", "y"]))
    assert capsys.readouterr().err == ""


def test_bars_draw_on_a_terminal_only():
    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        hook = progress.teacher_progress(stream)
        hook(0, 4, 0)
        for i in range(1, 5):
            hook(i, 4, 10)
    assert "4/4" in tty.getvalue() and "teacher" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_training_hook_draws_a_bar_and_forwards(capsys):
    seen, tty = [], Terminal()
    hook = progress.train_progress("train round 1", also=lambda *a: seen.append(a), stream=tty)
    for s in range(1, 4):
        hook(s, 3, 1.0 / s)
    assert seen == [(1, 3, 1.0), (2, 3, 0.5), (3, 3, 1.0 / 3)]
    assert "train round 1" in tty.getvalue() and "3/3" in tty.getvalue() and "loss=0.333" in tty.getvalue()
    hook = progress.train_progress("train round 2")  # stderr: not a terminal
    hook(1, 1, 0.5)
    assert capsys.readouterr().err == ""


def test_generate_calls_on_batch_after_every_batch():
    from training.generate import generate
    from training.loading import load_model

    model, tok = load_model("tiny", device="cpu", seed=0)
    convs = [[{"role": "user", "content": q}] for q in ("a", "bb", "ccc", "dddd", "eeeee")]
    seen: list[tuple[int, int, int]] = []
    gens = generate(model, tok, convs, max_new_tokens=4, batch_size=2, on_batch=lambda *a: seen.append(a))
    done = [s[0] for s in seen]
    assert len(done) >= 3 and done[-1] == 5 and all(0 < b - a <= 2 for a, b in zip([0] + done, done))
    assert {s[1] for s in seen} == {5}
    assert sum(s[2] for s in seen) == sum(g.tokens_out for g in gens)


@pytest.mark.parametrize("lr", [1e-9])
def test_the_exam_and_training_of_a_student_move_their_bars(tmp_path, lr):
    from training.student import Student

    cfg = StudentConfig(source="tiny", epochs=1, batch_size=2, learning_rate=lr, max_new_tokens=4, device="cpu",
                        exam_batch_size=2)
    st = Student(cfg, tmp_path, seed=0)
    st.load(None)
    seen: list[tuple[int, int, int]] = []
    assert len(st.answer(["q1", "q2", "q3"], on_batch=lambda *a: seen.append(a))) == 3
    assert [s[:2] for s in seen] == [(2, 3), (3, 3)]
    tty, steps = Terminal(), []
    st.train([{"prompt": f"q{i}", "answer": "a"} for i in range(4)], seed=0,
             progress=progress.train_progress("train", also=lambda s, n, _l: steps.append((s, n)), stream=tty))
    assert steps == [(1, 2), (2, 2)] and "2/2" in tty.getvalue()


def test_an_in_process_teacher_reports_rows_as_its_generate_batches_finish(tmp_path, monkeypatch):
    """hf: teachers run one batched call; the bar moves after every generate batch, not only at the end."""
    import training.generate as gen

    batches, real = [0], gen._batch_tensors
    monkeypatch.setattr(gen, "_batch_tensors", lambda *a: (batches.__setitem__(0, batches[0] + 1), real(*a))[1])
    calls: list[tuple[int, int, int]] = []
    seen: dict[int, int] = {}

    def hook(done, total, tokens):
        calls.append((done, total, tokens))
        seen.setdefault(done, batches[0])

    t = Teacher(TeacherConfig(spec="hf:tiny", concurrency=2), tmp_path, progress=hook)
    replies = t.ask(_reqs(["a", "b", "c", "d"]))
    assert all(r.error is None for r in replies)
    assert [c[0] for c in calls] == [0, 1, 2, 3, 4]  # each row once
    assert seen[2] == 1 and seen[4] == 2              # the first two rows were shown before the second batch ran
    assert sum(c[2] for c in calls) == sum(r.tokens_out for r in replies)
