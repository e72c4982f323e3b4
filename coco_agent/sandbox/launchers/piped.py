"""A worker that is a local process talking frames over its stdin/stdout pipes (bubblewrap, plain process)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from coco_agent.sandbox.protocol import FrameReader

STDERR_CAP = 16 * 1024


@dataclass
class PipedWorker:
    """One running worker process and its pipes."""

    proc: subprocess.Popen
    key: Hashable
    frames: FrameReader
    prefix: str
    ready: list = field(default_factory=list)
    stderr: bytearray = field(default_factory=bytearray)
    stderr_open: bool = True
    jobs: int = 0
    fresh: bool = True
    home: str = ""  # a host folder made for this worker (removed when it stops)

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.proc.pid}"

    def send(self, data: bytes) -> None:
        """Write a whole frame (raises OSError when the worker is gone)."""
        view = memoryview(data)
        fd = self.proc.stdin.fileno()
        while view:
            view = view[os.write(fd, view) :]

    def read_frame(self, deadline: float) -> tuple[dict | None, bytes, str]:
        """Next worker frame: (header, payload, '') or (None, b'', why) on deadline, EOF or protocol error."""
        out, err = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        while not self.ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, b"", "deadline"
            for fd in select.select([out, err] if self.stderr_open else [out], [], [], remaining)[0]:
                chunk = os.read(fd, 1 << 20)
                if fd == err:
                    self.stderr += chunk[: max(0, STDERR_CAP - len(self.stderr))]
                    self.stderr_open = bool(chunk)
                elif not chunk:
                    return None, b"", "eof"
                else:
                    try:
                        self.ready.extend(self.frames.feed(chunk))
                    except ValueError as exc:
                        return None, b"", f"protocol error: {exc}"
        header, payload = self.ready.pop(0)
        return header, payload, ""

    def take_stderr(self) -> bytes:
        data = bytes(self.stderr)
        self.stderr.clear()
        return data

    def kill(self) -> None:
        """SIGKILL the worker's session (bubblewrap's --die-with-parent then ends its whole namespace)."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
