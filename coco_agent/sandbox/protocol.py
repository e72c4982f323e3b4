"""The worker protocol, written once: frames, frame types, job statuses and job limits.

Standard library only: the worker bundle carries a copy of this file (coco_worker/protocol.py, made by
coco_agent/sandbox/bundle.py; a test checks the copy in the image is this file), so the host and the worker
speak from the same source. What the host does with what a worker reports (decoding, validation, recycling)
stays on the host side.

Frame: 4-byte big-endian header length, UTF-8 JSON header, then ``header["payload_len"]`` raw bytes.
  host -> worker  {"type": "job", "id", "format", "timeout", "limits": {...}} + program source
                  {"type": "ping"} | {"type": "exit"}
  worker -> host  {"type": "ready", "pid", "python", "preloaded", "formats"} once at start-up
                  {"type": "result", "id", "status", "error", "stdout", "stderr", "seconds", "width",
                   "height", "captured", "text_hidden", "text_boxes", "texts", "facts", "clean", "unclean"} + PNG
                   bytes (status ok only)
                  {"type": "pong", "jobs"} | {"type": "error", "error"}
"text_boxes" lists where the picture shows drawn text, [[x0, y0, x1, y1], ...] in the PNG's pixels (top-left
origin, x1/y1 exclusive); null when unknown. "texts" lists the drawn strings the renderer knows, each
{"text", "box": [x0, y0, x1, y1], "container": [x0, y0, x1, y1] | null, "font_px": number | null, and
optionally "rotation" (degrees, counter-clockwise) and "color" ("#rrggbb")}, boxes in the PNG's pixels, not
clipped; null when unknown. "facts": what the program drew, as data (coco_worker/facts.py: texts with roles
and boxes, bar/line/scatter series, pie wedges, shape counts; version FACTS_VERSION), at most FACTS_BYTES of
JSON; null when unknown or when the job's limits say "facts": false. "clean"/"unclean" (warm workers only):
whether the sandbox is as
the next job must find it, and if not, why.
"""

from __future__ import annotations

import json
import os
import struct

JOB, RESULT, PING, PONG, READY, EXIT, ERROR = "job", "result", "ping", "pong", "ready", "exit", "error"
STATUSES = ("ok", "error", "timeout", "oom", "no_image", "rejected")
HEALTHY = frozenset({"ok", "error", "no_image", "rejected"})  # statuses after which a warm worker is reused
MAX_HEADER = 1 << 20
MAX_DEPTH = 8  # nesting of a frame header; real ones reach 3 (text_boxes: a list of lists)
MAX_TEXT_BOXES = 1000  # more text boxes than this: reported as unknown (null)
MAX_TEXTS = 1000  # drawn strings reported with their geometry ("texts"); more: unknown (null)
MAX_TEXT_CHARS = 300  # characters kept of each reported string
FACTS_VERSION = (
    1  # the shape of "facts" (coco_worker/facts.py writes it, coco_agent/sandbox/facts.py reads it)
)
FACTS_BYTES = 256 * 1024  # JSON size of "facts" at most (the worker trims series and texts to fit)
FACTS_MAX_AXES = 32
FACTS_MAX_SERIES = 32  # bar, line, scatter series and pies per axes
FACTS_MAX_VALUES = 500  # values per series, tick labels per axis
FACTS_MAX_TEXTS = 1000
FACTS_MAX_STRING = 500  # characters of any string
DEFAULT_LIMITS = {  # a job's "limits", as the worker applies them when the host leaves one out
    "output_bytes": 64 * 1024,
    "max_png_bytes": 32 * 1024 * 1024,
    "max_pixels": 40_000_000,
    "file_bytes": 64 * 1024 * 1024,
    "nofile": 256,
    "address_space_mb": 0,  # 0: no RLIMIT_AS (containers use the memory cgroup instead)
    "facts": True,  # report what the program drew as data (false: facts null, nothing extracted)
    "hide_text": False,  # draw the picture with its text drawing nothing, layout unchanged (layered text)
    "nproc": 0,  # RLIMIT_NPROC of a job under a uid of its own (--job-uid; 0: none), else the pids cgroup's
}

# Bound at import (in the worker: in the zygote, before any job): a job that replaces json.dumps, struct.pack
# or os.write in its own process still has its result frame written by the originals.
_dumps, _loads, _pack, _unpack, _write, _read = (
    json.dumps,
    json.loads,
    struct.pack,
    struct.unpack,
    os.write,
    os.read,
)


def encode_frame(header: dict, payload: bytes = b"") -> bytes:
    """One frame: `header` (with payload_len set) followed by `payload`."""
    data = _dumps(dict(header, payload_len=len(payload)), ensure_ascii=True).encode()
    return _pack(">I", len(data)) + data + payload


def write_frame(fd: int, header: dict, payload: bytes = b"") -> None:
    """Write one whole frame to a file descriptor."""
    buf = memoryview(encode_frame(header, payload))
    while buf:
        buf = buf[_write(fd, buf) :]


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


def parse_header(data: bytes, max_payload: int) -> tuple[dict, int]:
    """A frame header and its payload length, validated. ValueError for anything malformed.

    A forged header (a job can forge what its worker forwards) must end as ValueError, the protocol error
    every reader handles: deep nesting raises RecursionError, a list or Infinity as payload_len TypeError or
    OverflowError. Nesting is capped too: code downstream recurses over fields, on a stack already deep.
    """
    try:
        header = _loads(data)
        if not isinstance(header, dict):
            raise ValueError("protocol frame header is not a JSON object")
        need = int(header.get("payload_len", 0))
    except (RecursionError, TypeError, OverflowError) as exc:
        raise ValueError(f"malformed protocol frame header ({type(exc).__name__})") from None
    if _too_deep(header, MAX_DEPTH):
        raise ValueError(f"protocol frame header nested more than {MAX_DEPTH} deep")
    if not 0 <= need <= max_payload:
        raise ValueError(f"protocol frame payload of {need} bytes exceeds {max_payload}")
    return header, need


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
                (size,) = _unpack(">I", self.buf[:4])
                if size > MAX_HEADER:
                    raise ValueError(f"protocol frame header of {size} bytes exceeds {MAX_HEADER}")
                if len(self.buf) < 4 + size:
                    break
                self._header, self._need = parse_header(bytes(self.buf[4 : 4 + size]), self.max_payload)
                del self.buf[: 4 + size]
            if len(self.buf) < self._need:
                break
            frames.append((self._header, bytes(self.buf[: self._need])))
            del self.buf[: self._need]
            self._header = None
        return frames


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly n bytes from fd; None on EOF before the first byte, EOFError on a torn frame."""
    chunks, got = [], 0
    while got < n:
        chunk = _read(fd, min(n - got, 1 << 20))
        if not chunk:
            if got == 0:
                return None
            raise EOFError(f"channel closed mid-frame ({got}/{n} bytes)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_payload: int) -> tuple[dict, bytes] | None:
    """Read one frame (header dict, payload) from a blocking fd, or None on a clean EOF."""
    raw = read_exact(fd, 4)
    if raw is None:
        return None
    (size,) = _unpack(">I", raw)
    if size > MAX_HEADER:
        raise ValueError(f"frame header too large: {size} bytes")
    header, length = parse_header(read_exact(fd, size) or b"{}", max_payload)
    payload = (read_exact(fd, length) or b"") if length else b""
    return header, payload


def parse_frame(raw: bytes, max_payload: int) -> tuple[dict, bytes] | None:
    """One whole frame held in `raw` (a job's result as its process wrote it), or None when it is not one."""
    if len(raw) < 4:
        return None
    (size,) = _unpack(">I", raw[:4])
    try:
        header, n = parse_header(raw[4 : 4 + size], max_payload)
    except ValueError:
        return None
    payload = raw[4 + size : 4 + size + n]
    return (header, payload) if len(payload) == n else None
