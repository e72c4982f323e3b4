"""Sandboxes that run drawing programs and return PNG bytes: Docker (hardened), bubblewrap or a subprocess."""

from __future__ import annotations

import threading
from collections.abc import Callable

from coco_agent.sandbox.base import Format, RenderResult, Sandbox, SandboxLimits, SandboxUnavailable, Status
from coco_agent.sandbox.png import ImageRejected, decode_png

__all__ = [
    "Format",
    "ImageRejected",
    "RenderResult",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
    "Status",
    "decode_png",
    "get_sandbox",
    "print_progress",
    "close_sandboxes",
]

_cache: dict[str, Sandbox] = {}
_lock = threading.Lock()


def print_progress(message: str) -> None:
    """Show a sandbox progress message (plain text, never markup: it can quote an error) on stderr."""
    from coco_agent.safe_text import plain_text, safe_console

    style = "yellow" if message.startswith("warning:") else ""
    safe_console(stderr=True).print("[dim]sandbox:[/dim]", plain_text(message, style), highlight=False)


def get_sandbox(kind: str = "auto", progress: Callable[[str], None] | None = None) -> Sandbox:
    """The process-wide sandbox of `kind`, created once.

    auto: Docker (a warm pool of containers) when the engine answers (building the image first if its tag is
    missing), else bubblewrap when installed and able to start its worker, else the plain subprocess, each
    time with a warning. docker: Docker or SandboxUnavailable naming the fix. bubblewrap: warm workers in
    bubblewrap namespaces. process: the worker in an rlimited subprocess (weakest). COCO_SANDBOX_POOL=0
    starts a fresh container / bubblewrap per job instead of the warm ones. ``progress`` gets plain text (it
    can quote an engine's error), never markup; by default it is shown on stderr.
    """
    from coco_agent.sandbox import backends

    if kind not in backends.KINDS:
        raise ValueError(f"unknown sandbox kind {kind!r}; choose one of {', '.join(backends.KINDS)}")
    with _lock:
        if kind not in _cache:
            _cache[kind] = backends.make(kind, progress or print_progress)
        return _cache[kind]


def close_sandboxes() -> None:
    """Close every cached sandbox (removes this process's containers, kills its bubblewrap workers)."""
    with _lock:
        for sandbox in _cache.values():
            sandbox.close()
        _cache.clear()
