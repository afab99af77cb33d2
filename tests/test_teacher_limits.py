"""Rate limits, retry timing rules and the tolerant parser, tested without a network."""
from __future__ import annotations

import time

import httpx
import openai
import pytest
from conftest import peak_in_flight
from pydantic import BaseModel

from agents.teacher.limits import Limiter
from agents.teacher.parsing import extract_json_object, parse_structured
from agents.teacher.retry import is_fatal, is_transient, retry_after_s


def _status_error(code: int, headers: dict | None = None) -> openai.APIStatusError:
    req = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    resp = httpx.Response(code, headers=headers or {}, request=req)
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError, 404: openai.NotFoundError,
           400: openai.BadRequestError, 401: openai.AuthenticationError}.get(code, openai.APIStatusError)
    return cls(f"Error code: {code}", response=resp, body=None)


def test_requests_per_minute_window():
    clock = {"t": 0.0}
    lim = Limiter(concurrency=4, requests_per_minute=2, clock=lambda: clock["t"])
    for _ in range(2):
        with lim.slot(1):
            pass
    assert lim._wait_s(1) == pytest.approx(60.0)
    clock["t"] = 30.0
    assert lim._wait_s(1) == pytest.approx(30.0)
    clock["t"] = 60.5
    assert lim._wait_s(1) <= 0


def test_tokens_per_minute_uses_settled_counts():
    clock = {"t": 0.0}
    lim = Limiter(concurrency=4, tokens_per_minute=100, clock=lambda: clock["t"])
    with lim.slot(90) as s:
        s.settle(20)  # the real count replaces the estimate
    assert lim._wait_s(70) <= 0
    assert lim._wait_s(90) == pytest.approx(60.0)


def test_hold_off_pauses_everyone_and_concurrency_bounds_slots():
    lim = Limiter(concurrency=2)
    lim.hold_off(0.2)
    t0 = time.monotonic()
    with lim.slot():
        pass
    assert time.monotonic() - t0 >= 0.19
    assert peak_in_flight(lim) == 2


def test_fault_classification_and_retry_after():
    assert is_transient(_status_error(429)) and is_transient(_status_error(500))
    assert not is_transient(_status_error(400)) and not is_transient(_status_error(404))
    assert is_fatal(_status_error(404)) and is_fatal(_status_error(401)) and not is_fatal(_status_error(500))
    assert retry_after_s(_status_error(429, {"Retry-After": "3"})) == 3.0
    assert retry_after_s(_status_error(429, {"retry-after-ms": "250"})) == 0.25
    assert retry_after_s(_status_error(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_s(_status_error(500)) is None
    assert not is_transient(ValueError("a bug"))


class Q(BaseModel):
    question: str
    level: int


@pytest.mark.parametrize("text", [
    '{"question": "2+2?", "level": 1}',
    'Here you go:\n```json\n{"question": "2+2?", "level": 1,}\n```\nHope it helps',
    "{'question': '2+2?', 'level': 1}",
    'prefix {"question": "2+2?", "level": 1} suffix {"other": 2}',
])
def test_tolerant_parser_accepts_common_slips(text):
    value, err = parse_structured(text, Q)
    assert err is None and value == Q(question="2+2?", level=1)


@pytest.mark.parametrize("text,why", [
    ("no json here", "no JSON object"),
    ('{"question": "2+2?", "level": 1', "not closed"),
    ('{"question": "2+2?"}', "level"),
    ("", "empty"),
])
def test_tolerant_parser_reports_why(text, why):
    value, err = parse_structured(text, Q)
    assert value is None and why in err


def test_extract_keeps_braces_inside_strings():
    assert extract_json_object('x {"a": "}{", "b": [1, {"c": true}]} y') == {"a": "}{", "b": [1, {"c": True}]}
