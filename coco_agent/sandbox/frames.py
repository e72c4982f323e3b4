"""Host side of the worker protocol: length-prefixed frames (4-byte big-endian size, JSON header, payload)."""

from __future__ import annotations

import json
import struct

MAX_HEADER = 1 << 20


def encode_frame(header: dict, payload: bytes = b"") -> bytes:
    """One frame: `header` (with payload_len set) followed by `payload`."""
    data = json.dumps(dict(header, payload_len=len(payload))).encode()
    return struct.pack(">I", len(data)) + data + payload


class FrameReader:
    """Incremental parser: feed bytes, pop complete frames. Sizes are capped before anything is buffered."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.buf = bytearray()
        self._header: dict | None = None
        self._need = 0

    def feed(self, data: bytes) -> list[tuple[dict, bytes]]:
        """Add bytes; return the frames they completed. Raises ValueError on a malformed or oversized frame."""
        self.buf += data
        frames = []
        while True:
            if self._header is None:
                if len(self.buf) < 4:
                    break
                (size,) = struct.unpack(">I", self.buf[:4])
                if size > MAX_HEADER:
                    raise ValueError(f"protocol frame header of {size} bytes exceeds {MAX_HEADER}")
                if len(self.buf) < 4 + size:
                    break
                header = json.loads(bytes(self.buf[4 : 4 + size]))
                if not isinstance(header, dict):
                    raise ValueError("protocol frame header is not a JSON object")
                self._need = int(header.get("payload_len", 0))
                if not 0 <= self._need <= self.max_payload:
                    raise ValueError(
                        f"protocol frame payload of {self._need} bytes exceeds {self.max_payload}"
                    )
                self._header = header
                del self.buf[: 4 + size]
            if len(self.buf) < self._need:
                break
            frames.append((self._header, bytes(self.buf[: self._need])))
            del self.buf[: self._need]
            self._header = None
        return frames
