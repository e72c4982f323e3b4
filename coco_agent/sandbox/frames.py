"""Host side of the worker protocol: length-prefixed frames (4-byte big-endian size, JSON header, payload)."""

from __future__ import annotations

import json
import struct

from coco_agent.sandbox.base import clean_text

MAX_HEADER = 1 << 20
MAX_DEPTH = 8  # nesting of a frame header; real ones reach 3 (text_boxes: a list of lists in the header)


def _too_deep(value: object, limit: int) -> bool:
    """Whether lists/dicts nest more than `limit` deep (iterative: no recursion on untrusted data)."""
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


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
                # A forged header (a root job can write the worker's pipes in the process sandbox, and the worker
                # forwards fields of the job's own result) must end as ValueError, the protocol error every
                # reader handles: deep nesting raises RecursionError, a list or Infinity as payload_len
                # TypeError or OverflowError. Nesting is capped too: code downstream (str() of a field)
                # recurses over it, on a host stack already deep inside the graph.
                try:
                    header = json.loads(bytes(self.buf[4 : 4 + size]))
                    if not isinstance(header, dict):
                        raise ValueError("protocol frame header is not a JSON object")
                    self._need = int(header.get("payload_len", 0))
                except (RecursionError, TypeError, OverflowError) as exc:
                    raise ValueError(f"malformed protocol frame header ({type(exc).__name__})") from None
                if _too_deep(header, MAX_DEPTH):
                    raise ValueError(f"protocol frame header nested more than {MAX_DEPTH} deep")
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


HEALTHY = frozenset(
    {"ok", "error", "no_image", "rejected"}
)  # job statuses after which a warm worker is reused


def read_result(read_frame, deadline: float) -> tuple[dict | None, bytes, str]:
    """Read frames until the job's result (other frames, e.g. pings, are skipped) or until none comes.

    `read_frame(deadline)` returns (header, payload, why) with header None on EOF, deadline or a bad frame.
    """
    header, payload, why = None, b"", ""
    while header is None or header.get("type") != "result":
        header, payload, why = read_frame(deadline)
        if header is None:
            break
    return header, payload, why


def recycle_reason(header: dict, jobs: int, max_jobs: int) -> str | None:
    """None when the worker that sent this result may take another job, else why it must be replaced.

    The header is the job's to forge (any JSON): only a string status counts as healthy (`in HEALTHY` on a
    list would raise TypeError and leave the worker taken for good), and the reason is capped.
    """
    status = header.get("status")
    if isinstance(status, str) and status in HEALTHY and header.get("clean") is True and jobs < max_jobs:
        return None
    return clean_text(header.get("unclean") or status or "max jobs", 200)
