"""Teacher backends and the teacher client.

`make_chat_model(spec, cfg)` turns a spec (`openai:`, `openai-compatible:`, `hf:`, `vllm:`) into a LangChain chat
model; `Teacher` is the one door every teacher call goes through (cache, retries, rate limits, budget, structured
output, accounting, trace). See client.py for what it guarantees.
"""
from agents.teacher.backends import BACKENDS, make_chat_model, parse_spec
from agents.teacher.cache import TeacherCache, cache_key
from agents.teacher.client import Teacher
from agents.teacher.errors import BUDGET_NOT_SENT, BudgetExhausted, TeacherConfigError, TeacherUnavailable
from agents.teacher.hf_chat import LocalHFChatModel
from agents.teacher.prices import PriceTable
from agents.teacher.records import StructuredReply, TeacherReply, TeacherRequest
from agents.teacher.retry import RetryPolicy

__all__ = [
    "BACKENDS", "BUDGET_NOT_SENT", "BudgetExhausted", "LocalHFChatModel", "PriceTable", "RetryPolicy",
    "StructuredReply", "Teacher", "TeacherCache", "TeacherConfigError", "TeacherReply", "TeacherRequest",
    "TeacherUnavailable", "cache_key", "make_chat_model", "parse_spec",
]
