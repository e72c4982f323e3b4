"""The batch's thread pool for LangGraph's sync nodes: daemon threads that never hold up the end of a batch.

A run stopped at its deadline can leave its node's thread behind, still waiting on a model or the sandbox (both
have their own time limits). The batch must not wait for it: that run already has its result.json.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class DaemonThreadPool(ThreadPoolExecutor):
    """At most ``max_workers`` daemon threads; ``shutdown`` stops idle ones and never joins a busy one.

    A ThreadPoolExecutor to asyncio (``set_default_executor`` takes nothing else), with its own workers.
    """

    def __init__(self, max_workers: int, name: str = "coco-batch") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=name)
        self._max = max_workers
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            future: Future = Future()
            self._jobs.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            del job, future, fn, args, kwargs
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)
