"""Logit distillation: answer tokens aligned across the two renderings, KL falls, clear errors."""
from __future__ import annotations

import copy

import pytest
import torch

from ioa_state.config import StudentConfig
from training.distill import LocalTeacher, answer_logits, encode_pair, kd_token_losses
from training.examples import IGNORE, collate
from training.loading import load_model
from training.trainer import train_sft

CONTEXT = "Zorbia's capital is Quellmar."
EXAMPLES = [{"prompt": f"Question {i} about Zorbia?", "answer": f"Answer {i}: Quellmar" + " indeed" * i}
            for i in range(6)]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", device="cpu", seed=0)


def _cfg(**kw) -> StudentConfig:
    return StudentConfig(**dict(dict(source="tiny", learning_rate=1e-2, batch_size=3, epochs=1, bf16=False,
                                     loss="kd", kd_temperature=2.0), **kw))


def test_the_two_renderings_end_in_the_same_answer_tokens(tiny):
    tok = tiny[1]
    row = encode_pair(tok, tok, EXAMPLES[2], CONTEXT, max_length=192)
    s_ans = [t for t in row["labels"] if t != IGNORE]
    t_ans = [t for t in row["teacher_labels"] if t != IGNORE]
    assert s_ans == t_ans and tok.decode(s_ans).startswith("Answer 2: Quellmar indeed indeed")
    assert CONTEXT in tok.decode(row["teacher_input_ids"]) and CONTEXT not in tok.decode(row["input_ids"])
    assert row["teacher_input_ids"][-len(t_ans):] == row["input_ids"][-len(s_ans):]
    n_prompt = row["labels"].count(IGNORE)
    short = encode_pair(tok, tok, EXAMPLES[2], CONTEXT, max_length=n_prompt + 3)  # the student's cut applies to both
    assert [t for t in short["teacher_labels"] if t != IGNORE] == s_ans[:3]


def test_kd_token_loss_is_the_forward_kl():
    t, s = torch.randn(4, 11), torch.randn(4, 11)
    p = torch.softmax(t / 2, -1)
    manual = (p * (p.log() - torch.log_softmax(s / 2, -1))).sum(-1) * 4
    assert torch.allclose(kd_token_losses(s, t, 2.0), manual, atol=1e-5)
    assert torch.allclose(kd_token_losses(t, t, 2.0), torch.zeros(4), atol=1e-6)


def _answer_kl(student, teacher, tok) -> float:
    rows = [encode_pair(tok, tok, ex, CONTEXT, 192) for ex in EXAMPLES]
    s_b = collate([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows], tok.pad_token_id)
    t_rows = [{"input_ids": r["teacher_input_ids"], "labels": r["teacher_labels"]} for r in rows]
    t_b = collate(t_rows, tok.pad_token_id)
    with torch.no_grad():
        s, _ = answer_logits(student(input_ids=s_b["input_ids"], attention_mask=s_b["attention_mask"]).logits,
                             s_b["labels"], len(tok))
        t, _ = answer_logits(teacher(input_ids=t_b["input_ids"], attention_mask=t_b["attention_mask"]).logits,
                             t_b["labels"], len(tok))
    return float(kd_token_losses(s, t, 1.0).mean())


@pytest.mark.parametrize("loss", ["kd", "sft+kd"])
def test_distillation_moves_the_student_toward_the_teacher(tiny, loss):
    tok = tiny[1]
    teacher = load_model("tiny", device="cpu", seed=1)[0]  # other weights, the same tokenizer
    with torch.no_grad():
        teacher.lm_head.weight.mul_(40.0)  # a random tiny model is near-uniform; make its distribution peaked
    student = copy.deepcopy(tiny[0])
    before = _answer_kl(student, teacher, tok)
    student, stats = train_sft(student, tok, EXAMPLES, _cfg(loss=loss), seed=0, max_steps=8,
                               teacher=LocalTeacher(teacher, tok, CONTEXT))
    after = _answer_kl(student, teacher, tok)
    assert stats.steps == 8 and stats.answer_tokens > 0
    assert after < 0.8 * before, (before, after)
    assert not student.training and not teacher.training


def test_kd_needs_a_local_teacher_with_the_students_vocabulary(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="needs a teacher in this process"):
        train_sft(copy.deepcopy(model), tok, EXAMPLES, _cfg(), seed=0, max_steps=1)
    other = copy.deepcopy(tok)
    other.add_tokens(["<zorbia>"])
    with pytest.raises(ValueError, match="shares the student's tokenizer: the vocabularies differ"):
        train_sft(copy.deepcopy(model), tok, EXAMPLES, _cfg(), seed=0, max_steps=1,
                  teacher=LocalTeacher(model, other, CONTEXT))
    with pytest.raises(ValueError, match="use it with engine trl"):
        train_sft(copy.deepcopy(model), tok, EXAMPLES, _cfg(engine="loop"), seed=0, max_steps=1)
