"""Teacher specs: one setting picks the backend; every misconfiguration is one clear line."""
from __future__ import annotations

import sys

import pytest

from agents.teacher import BACKENDS, LocalHFChatModel, Teacher, TeacherConfigError, make_chat_model, parse_spec
from agents.teacher.backends import VLLM_MISSING, with_call_params
from ioa_state.config import ConfigError, TeacherConfig


def test_parse_spec_accepts_the_four_backends():
    assert parse_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_spec("openai-compatible:qwen2.5:7b") == ("openai-compatible", "qwen2.5:7b")
    assert parse_spec("hf:/models/x") == ("hf", "/models/x")
    assert parse_spec("vllm:org/model") == ("vllm", "org/model")


@pytest.mark.parametrize("spec", ["anthropic:claude", "gpt-4o", "", "hf:"])
def test_bad_spec_is_one_clear_line(spec):
    with pytest.raises(TeacherConfigError) as e:
        make_chat_model(spec, TeacherConfig())
    msg = str(e.value)
    assert "\n" not in msg and spec in msg
    if spec != "hf:":
        for b in BACKENDS:
            assert f"{b}:<model>" in msg


def test_vllm_without_vllm_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail even where vllm is installed
    with pytest.raises(TeacherConfigError) as e:
        make_chat_model("vllm:some/model", TeacherConfig())
    assert str(e.value) == VLLM_MISSING == "the vllm: teacher needs the optional extra: pip install 'ioa[vllm]'"
    assert isinstance(e.value, ConfigError)
    with pytest.raises(TeacherConfigError, match=r"pip install 'ioa\[vllm\]'"):
        Teacher(TeacherConfig(spec="vllm:some/model"), tmp_path)


def test_openai_without_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("MY_TEACHER_KEY", raising=False)
    cfg = TeacherConfig(spec="openai:gpt-4o-mini", api_key_env="MY_TEACHER_KEY")
    with pytest.raises(TeacherConfigError, match="MY_TEACHER_KEY") as e:
        Teacher(cfg, tmp_path)
    assert "\n" not in str(e.value)


def test_openai_model_uses_key_and_no_sdk_retries(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET")
    m = make_chat_model("openai:gpt-4o-mini", TeacherConfig(timeout_s=7))
    assert m.model_name == "gpt-4o-mini" and m.max_retries == 0 and m.request_timeout == 7
    assert m.openai_api_key.get_secret_value() == "sk-test-SECRET"
    assert "sk-test-SECRET" not in repr(m)


def test_openai_compatible_needs_base_url_and_sends_max_tokens_in_body(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(TeacherConfigError, match="base_url"):
        make_chat_model("openai-compatible:local", TeacherConfig())
    m = make_chat_model("openai-compatible:local", TeacherConfig(base_url="http://127.0.0.1:9/v1", max_tokens=40))
    assert m.openai_api_key.get_secret_value() == "EMPTY"
    payload = with_call_params(m, "openai-compatible", 0.2, 17)._get_request_payload([("user", "hi")])
    assert payload["max_tokens"] == 17 if "max_tokens" in payload else payload["extra_body"]["max_tokens"] == 17
    assert payload["max_completion_tokens"] == 17 and payload["temperature"] == 0.2


def test_hf_spec_builds_a_lazy_local_model():
    m = make_chat_model("hf:smollm2", TeacherConfig(concurrency=5, max_tokens=33))
    assert isinstance(m, LocalHFChatModel)
    assert (m.source, m.batch_size, m.max_tokens) == ("smollm2", 5, 33)


def test_role_override_picks_another_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET")
    cfg = TeacherConfig(spec="hf:smollm2", roles={"examiner": "openai:gpt-4o"})
    t = Teacher(cfg, tmp_path)
    assert t.spec_for("examiner") == "openai:gpt-4o" and t.spec_for("adapter") == "hf:smollm2"
    assert type(t.chat_model("openai:gpt-4o")).__name__ == "ChatOpenAI"
