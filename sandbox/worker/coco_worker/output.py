"""Capped output: what a job prints is kept head and tail, within a byte budget."""

from __future__ import annotations


class Capped:
    """Keeps the head and the tail of a stream, at most `cap` bytes in all; counts what was dropped."""

    def __init__(self, cap: int) -> None:
        self.cap, self.head, self.tail, self.dropped = cap, bytearray(), bytearray(), 0

    def add(self, data: bytes) -> None:
        room = self.cap // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - (self.cap - self.cap // 2)
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def text(self) -> str:
        out = bytes(self.head).decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[... {self.dropped} bytes dropped ...]\n"
        return (out + bytes(self.tail).decode("utf-8", "replace")).replace("\x00", "\\x00")
