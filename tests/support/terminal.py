"""The CLI under a real pseudo-terminal, and hostile text to feed it: what reaches the terminal, byte for byte."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

from support.batch_helpers import clean_env

# What a program (or a model, or a file) might print to take over the terminal: OSC 52 writes the clipboard,
# OSC 0 sets the window title, CSI 2J clears the screen, U+009B is the one-character (C1) CSI, U+202E reverses
# what follows on screen (Trojan Source).
HOSTILE = "\x1b]52;c;ZXZpbA==\x07 \x1b]0;pwned\x07 \x1b[2J \x9b31m \u202egnp.exe"
# Rich markup that crashes (`[/]` closes nothing) or injects a style and a link.
MARKUP = "[/] [link=http://x]click[/link] [bold red]red"
RAW = (b"\x1b]52;", b"\x1b]0;", b"\x1b[2J", b"\xc2\x9b", "\u202e".encode(), b"\x1b]8;", b"\x07")
VISIBLE = (rb"\x1b]52;c;ZXZpbA==\x07", rb"\x1b]0;pwned\x07", rb"\x1b[2J", rb"\x9b31m", rb"\u202egnp.exe")
# Signs of coco's own traceback (a program's traceback, shown as its error, is fine).
CRASHED = (b'File "<frozen runpy>"', b"site-packages", b"coco_agent/")
SGR = re.compile(rb"\x1b\[[0-9;]*m")  # rich's own colours, dropped before looking for the visible forms


@dataclass
class Terminal:
    """What one command wrote to the terminal, and how it ended."""

    returncode: int
    raw: bytes

    @property
    def text(self) -> bytes:
        """The output without rich's colours and with the terminal's \\r\\n made \\n."""
        return SGR.sub(b"", self.raw).replace(b"\r\n", b"\n")

    def assert_harmless(self, *shown: bytes) -> None:
        """No hostile sequence reached the terminal raw, its visible form did, and coco did not crash."""
        for seq in RAW:
            assert seq not in self.raw, (seq, self.raw[-3000:])
        for crash in CRASHED:
            assert crash not in self.raw, self.raw[-3000:]
        for seq in shown:
            assert seq in self.text, (seq, self.text[-3000:])


def run_in_terminal(
    *args: str, timeout: float = 240, columns: int = 220, cwd: str | os.PathLike | None = None
) -> Terminal:
    """Run `python -m coco_agent.cli ARGS` with stdin, stdout and stderr on a new pseudo-terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, columns, 0, 0))
    env = clean_env() | {"TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "60"}
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "coco_agent.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed its end
                break
            if not data:
                break
            chunks.append(data)
        else:
            raise AssertionError(f"still running after {timeout} s: {b''.join(chunks)[-3000:]!r}")
        return Terminal(proc.wait(timeout=30), b"".join(chunks))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
