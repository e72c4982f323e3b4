"""Model calls under the batch policy: which errors are retried, Retry-After, the concurrency bound, deadlines;
and a real batch whose server answers 503 (more often than the OpenAI SDK retries) and then succeeds."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from support.batch_helpers import keyed, keyed_responder, requests_for, write_jsonl

from coco_agent.batch import BatchOptions, run_batch
from coco_agent.context import RunContext
from coco_agent.models.calls import (
    CallAborted,
    CallPolicy,
    call_model,
    call_policy,
    retry_after_s,
    retry_wait,
    run_scope,
    transient_reason,
)

FAST = CallPolicy(retries=3, backoff_s=0.001, max_backoff_s=0.002)


class HTTPError(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = SimpleNamespace(status_code=status, headers=headers or {})


class APITimeoutError(Exception):
    """Named like the OpenAI SDK's timeout error."""


def flaky(*failures: BaseException, answer: str = "ok"):
    calls = []

    def fn(x: str) -> str:
        calls.append(x)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return answer

    return fn, calls


@pytest.mark.parametrize(
    "error, reason",
    [
        (HTTPError(429), "HTTP 429"),
        (HTTPError(500), "HTTP 500"),
        (HTTPError(503), "HTTP 503"),
        (HTTPError(408), "HTTP 408"),
        (APITimeoutError(), "timeout"),
        (TimeoutError(), "timeout"),
        (ConnectionResetError(), "connection error"),
        (HTTPError(400), None),
        (HTTPError(401), None),
        (ValueError("bad"), None),
    ],
)
def test_transient_errors(error, reason):
    assert transient_reason(error) == reason


def test_retry_after_forms():
    assert retry_after_s(HTTPError(429, {"retry-after": "7"})) == 7
    assert retry_after_s(HTTPError(429, {"retry-after-ms": "250"})) == 0.25
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_s(HTTPError(503, {"retry-after": when})) <= 30
    assert retry_after_s(HTTPError(503, {"retry-after": "soon"})) is None
    assert retry_after_s(HTTPError(503)) is None
    policy = CallPolicy(retries=5, backoff_s=2, max_backoff_s=60, max_retry_after_s=100)
    assert retry_wait(HTTPError(429, {"retry-after": "42"}), 0, policy) == 42
    assert retry_wait(HTTPError(429, {"retry-after": "4200"}), 0, policy) == 100
    assert 1.5 <= retry_wait(HTTPError(500), 0, policy) <= 2
    assert 6 <= retry_wait(HTTPError(500), 2, policy) <= 8
    assert 45 <= retry_wait(HTTPError(500), 9, policy) <= 60


def test_default_policy_does_not_retry():
    fn, calls = flaky(HTTPError(500))
    with pytest.raises(HTTPError):
        call_model(fn, "x")
    assert len(calls) == 1


def test_transient_errors_are_retried_then_succeed():
    fn, calls = flaky(HTTPError(429), APITimeoutError(), HTTPError(502))
    with call_policy(FAST):
        assert call_model(fn, "x") == "ok"
    assert len(calls) == 4


def test_retries_run_out_and_the_last_error_surfaces():
    fn, calls = flaky(*[HTTPError(503)] * 5)
    with call_policy(FAST), pytest.raises(HTTPError, match="503"):
        call_model(fn, "x")
    assert len(calls) == 4


def test_client_errors_are_not_retried():
    fn, calls = flaky(HTTPError(400))
    with call_policy(FAST), pytest.raises(HTTPError):
        call_model(fn, "x")
    assert len(calls) == 1


def test_no_retry_sleeps_past_the_deadline():
    fn, calls = flaky(HTTPError(429, {"retry-after": "30"}))
    with call_policy(FAST), run_scope(deadline_s=5), pytest.raises(CallAborted, match="deadline"):
        call_model(fn, "x")
    assert len(calls) == 1


def test_a_cancelled_run_starts_no_request():
    fn, calls = flaky()
    with run_scope() as scope:
        scope.cancel()
        with pytest.raises(CallAborted, match="cancelled"):
            call_model(fn, "x")
    assert calls == []


def test_concurrency_is_bounded():
    active, peak, lock = [0], [0], threading.Lock()
    gate = threading.Barrier(2, timeout=10)  # two callers must be inside at once, never three

    def fn(_: str) -> str:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait()
        with lock:
            active[0] -= 1
        return "ok"

    with call_policy(CallPolicy(max_concurrency=2)):
        threads = [threading.Thread(target=call_model, args=(fn, "x")) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak[0] == 2


def test_batch_retries_a_server_that_answers_503_then_succeeds(openai_server, tmp_path):
    """503 four times (the SDK's own 3 tries, then ours), honouring retry-after-ms; then a program."""
    busy = (503, {"error": {"message": "overloaded", "type": "server_error"}}, {"retry-after-ms": "20"})
    openai_server.respond_with(keyed_responder(coder={"busy": [busy] * 4}))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "busy", "prompt": keyed("busy")}])
    ctx = RunContext(llm="openai:test-model", vlm="none", base_url=openai_server.base_url, sandbox="process")
    events = []
    summary = run_batch(BatchOptions(prompts, tmp_path / "out", ctx, retries=2), on_event=events.append)
    assert summary["statuses"]["accepted"] == 1
    assert len(requests_for(openai_server, "busy")) == 5
    assert [e["status"] for e in events if e["event"] == "prompt"] == ["accepted"]
