"""Every model request goes through ``call_model``: bounded concurrency, retry with backoff on transient errors.

The policy is process-wide (``call_policy(...)`` sets it for a block; `coco batch` does). The default keeps
`coco generate` as it was: no bound, no retries beyond the provider SDK's own quick ones. A transient error is
HTTP 408/409/425/429/5xx, a timeout or a lost connection; the wait doubles each try (with jitter) unless the
server says how long in ``Retry-After`` / ``retry-after-ms``. A run scope (``run_scope``) carries a run's
deadline into the worker threads that run its nodes: no retry sleeps past it, and once the run is cancelled no
new request starts.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUS = {408, 409, 425, 429}
_TRANSIENT_NAMES = {
    "APITimeoutError": "timeout",
    "APIConnectionError": "connection error",
    "TimeoutException": "timeout",
    "ReadTimeout": "timeout",
    "ConnectTimeout": "timeout",
    "ConnectError": "connection error",
    "RemoteProtocolError": "connection error",
    "TimeoutError": "timeout",
    "ConnectionError": "connection error",
}


@dataclass(frozen=True)
class CallPolicy:
    """How model requests are made: at most ``max_concurrency`` at once, ``retries`` extra tries each."""

    max_concurrency: int | None = None
    retries: int = 0
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 300.0


@dataclass
class RunScope:
    """One run's deadline (``time.monotonic()`` based) and cancel flag, seen by its node threads."""

    deadline: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class CallAborted(RuntimeError):
    """The run was cancelled or its deadline left no time for another try."""


_policy = CallPolicy()
_slots: Slots | None = None
_policy_lock = threading.Lock()
_scope: ContextVar[RunScope | None] = ContextVar("coco_run_scope", default=None)


def current_policy() -> CallPolicy:
    return _policy


class Slots(Protocol):
    """What bounds requests at once: a semaphore here, or one that many processes share (the Ray engine's
    cluster-wide slots). ``acquire`` returns False when ``timeout`` passed first."""

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool: ...

    def release(self) -> None: ...


@contextlib.contextmanager
def call_policy(policy: CallPolicy, slots: Slots | None = None) -> Iterator[CallPolicy]:
    """Use ``policy`` for every model request in this process until the block ends; ``slots`` (when given)
    bounds requests instead of a semaphore of ``policy.max_concurrency`` in this process."""
    global _policy, _slots
    with _policy_lock:
        previous = (_policy, _slots)
        _policy = policy
        if slots is None and policy.max_concurrency:
            slots = threading.BoundedSemaphore(policy.max_concurrency)
        _slots = slots
    try:
        yield policy
    finally:
        with _policy_lock:
            _policy, _slots = previous


@contextlib.contextmanager
def run_scope(deadline_s: float | None = None) -> Iterator[RunScope]:
    """Bind a run's deadline and cancel flag to the current context (copied into the run's node threads)."""
    scope = RunScope(deadline=None if deadline_s is None else time.monotonic() + deadline_s)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def call_model(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` (a model's ``invoke``) under the current policy; re-raise what is not transient."""
    policy, slots, scope = _policy, _slots, _scope.get()
    for attempt in range(policy.retries + 1):
        _acquire(slots, scope)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            reason = transient_reason(exc)
            if reason is None or attempt >= policy.retries:
                raise
            error, wait = exc, retry_wait(exc, attempt, policy)
        finally:
            if slots is not None:
                slots.release()
        left = scope.remaining() if scope else None
        if left is not None and wait >= left:
            raise CallAborted(f"{reason}; no time left before the run's deadline for another try") from error
        log.warning("model call: %s; retry %d of %d in %.1f s", reason, attempt + 1, policy.retries, wait)
        if scope is not None and scope.cancelled.wait(wait):
            raise CallAborted("the run was cancelled") from error
        if scope is None:
            time.sleep(wait)
    raise AssertionError("unreachable")


def _acquire(slots: Slots | None, scope: RunScope | None) -> None:
    """Take a concurrency slot (when bounded); give up when the run is cancelled meanwhile."""
    if scope is not None and scope.cancelled.is_set():
        raise CallAborted("the run was cancelled")
    if slots is None:
        return
    while not slots.acquire(timeout=0.5):
        if scope is not None and scope.cancelled.is_set():
            raise CallAborted("the run was cancelled")


def status_code(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (``status_code``, or its ``response``), else None."""
    for source in (exc, getattr(exc, "response", None)):
        code = getattr(source, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth retrying ("HTTP 429", "timeout", ...), or None when it is not."""
    code = status_code(exc)
    if code is not None:
        return f"HTTP {code}" if code in RETRY_STATUS or code >= 500 else None
    for cls in type(exc).__mro__:
        if cls.__name__ in _TRANSIENT_NAMES:
            return _TRANSIENT_NAMES[cls.__name__]
    return None


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` as seconds or a date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


def retry_wait(exc: BaseException, attempt: int, policy: CallPolicy) -> float:
    """The wait before try ``attempt + 2``: the server's Retry-After when given, else jittered doubling."""
    asked = retry_after_s(exc)
    if asked is not None:
        return min(asked, policy.max_retry_after_s)
    wait = min(policy.max_backoff_s, policy.backoff_s * 2**attempt)
    return wait * random.uniform(0.75, 1.0)
