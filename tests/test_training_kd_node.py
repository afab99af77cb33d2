"""The trainer node's local teacher for logit distillation: the hf: model the teacher already loaded, with its
context; a remote teacher is refused when the config loads."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from agents.teacher.client import Teacher
from agents.trainer import local_teacher
from ioa_state.config import ConfigError, load_config
from training.distill import check_tokenizers
from training.loading import load_model


def test_the_local_teacher_is_the_hf_teachers_model_with_its_context(tmp_path):
    cfg = load_config(None, {"teacher.spec": "hf:tiny", "student.source": "tiny", "student.loss": "sft+kd"})
    teacher = Teacher(cfg.teacher, tmp_path)
    svc = SimpleNamespace(cfg=cfg, teacher=teacher, teacher_context="You know Zorbia.")
    lt = local_teacher(svc)
    assert lt.model is teacher.chat_model("hf:tiny").load()[0]  # shared, not loaded twice
    assert lt.context == "You know Zorbia."
    check_tokenizers(load_model("tiny", device="cpu")[1], lt.tokenizer)


def test_kd_with_a_remote_teacher_is_a_config_error():
    with pytest.raises(ConfigError, match="needs an hf: teacher"):
        load_config(None, {"teacher.spec": "openai:gpt-4o", "student.loss": "kd"})
    cfg = load_config(None, {"teacher.spec": "openai:gpt-4o", "teacher.roles": {"trainer": "hf:smollm2"},
                             "student.loss": "kd"})
    assert cfg.student.loss == "kd"
    with pytest.raises(ConfigError, match="needs the teacher in the training process"):
        load_config(None, {"student.loss": "kd", "student.num_processes": 2})
