"""Host side of the worker protocol (coco_agent/sandbox/protocol.py): waiting for a job's result, and whether
the worker that sent it may take another job."""

from __future__ import annotations

from coco_agent.sandbox.base import clean_text
from coco_agent.sandbox.protocol import HEALTHY, RESULT, FrameReader, encode_frame

__all__ = ["FrameReader", "encode_frame", "read_result", "recycle_reason"]


def read_result(read_frame, deadline: float) -> tuple[dict | None, bytes, str]:
    """Read frames until the job's result (other frames, e.g. pings, are skipped) or until none comes.

    `read_frame(deadline)` returns (header, payload, why) with header None on EOF, deadline or a bad frame.
    """
    header, payload, why = None, b"", ""
    while header is None or header.get("type") != RESULT:
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
