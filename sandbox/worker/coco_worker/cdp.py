"""A small Chrome DevTools Protocol client over Chromium's --remote-debugging-pipe (JSON messages, each ended
by a NUL byte). Used by the html renderer in its job process and by the runner's health check after a job.
Everything the browser sends is bounded before it is parsed (a page controls parts of it)."""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable

MAX_MESSAGE = 48 << 20  # a screenshot of 2048x2048 px fits (base64) many times over


class CdpError(Exception):
    """The browser answered with an error, went away, sent garbage, or did not answer in time."""


class Cdp:
    """One client of the browser's pipe. `on_event(message)` sees every event while a call waits."""

    def __init__(self, read_fd: int, write_fd: int, first_id: int = 1) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.next_id = first_id
        self.buf = bytearray()
        self.on_event: Callable[[dict], None] = lambda message: None
        self.deadline = time.monotonic() + 30

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        """Send one command without waiting; its id."""
        self.next_id += 1
        message: dict = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = memoryview(json.dumps(message).encode() + b"\0")
        while data:
            ready = select.select([], [self.write_fd], [], max(0.0, self.deadline - time.monotonic()))[1]
            if not ready:
                raise CdpError(f"the browser did not take the command {method} in time")
            data = data[os.write(self.write_fd, data) :]
        return self.next_id

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and wait (handling events) for its result; CdpError on an error answer."""
        wanted = self.send(method, params, session)
        while True:
            message = self.receive()
            if message.get("id") == wanted:
                if "error" in message:
                    error = message["error"]
                    text = error.get("message", error) if isinstance(error, dict) else error
                    raise CdpError(f"{method}: {str(text)[:300]}")
                result = message.get("result")
                return result if isinstance(result, dict) else {}
            if "method" in message:
                self.on_event(message)

    def wait_for(self, done: Callable[[], bool]) -> None:
        """Handle events until `done()` is true (CdpError at the deadline)."""
        while not done():
            message = self.receive()
            if "method" in message:
                self.on_event(message)

    def receive(self, timeout: float | None = None) -> dict:
        """The next whole message (CdpError at the deadline, on EOF or on garbage)."""
        end = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        while True:
            cut = self.buf.find(b"\0")
            if cut >= 0:
                raw = bytes(self.buf[:cut])
                del self.buf[: cut + 1]
                try:
                    message = json.loads(raw)
                except (ValueError, RecursionError):
                    raise CdpError("the browser sent a message that is not JSON") from None
                if not isinstance(message, dict):
                    raise CdpError("the browser sent a message that is not a JSON object")
                return message
            if len(self.buf) > MAX_MESSAGE:
                raise CdpError(f"the browser sent a message over {MAX_MESSAGE >> 20} MB")
            remaining = end - time.monotonic()
            if remaining <= 0 or not select.select([self.read_fd], [], [], remaining)[0]:
                raise CdpError("the browser did not answer in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise CdpError("the browser closed its pipe (it crashed or was killed)")
            self.buf += chunk

    def drain(self) -> None:
        """Drop whatever the browser already sent (events and late answers meant for an earlier client)."""
        os.set_blocking(self.read_fd, False)
        try:
            while True:
                try:
                    chunk = os.read(self.read_fd, 1 << 20)
                except BlockingIOError:
                    break
                if not chunk:
                    raise CdpError("the browser closed its pipe (it crashed or was killed)")
        finally:
            os.set_blocking(self.read_fd, True)
        self.buf.clear()
