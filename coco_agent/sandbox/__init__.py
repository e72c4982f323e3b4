"""Sandboxes that run drawing programs and return PNG bytes: Docker (hardened), bubblewrap or a subprocess."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable

from coco_agent.sandbox.base import Format, RenderResult, Sandbox, SandboxLimits, SandboxUnavailable, Status
from coco_agent.sandbox.formats import guess_format
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
    "guess_format",
    "print_progress",
    "close_sandboxes",
]

KINDS = ("auto", "docker", "process", "bubblewrap")
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
    if kind not in KINDS:
        raise ValueError(f"unknown sandbox kind {kind!r}; choose one of {', '.join(KINDS)}")
    with _lock:
        if kind not in _cache:
            _cache[kind] = _make(kind, progress or print_progress)
        return _cache[kind]


def _make(kind: str, progress: Callable[[str], None]) -> Sandbox:
    from coco_agent.sandbox.process_sandbox import ProcessSandbox

    if kind == "process":
        return ProcessSandbox(bubblewrap=False)
    if kind == "bubblewrap":
        try:
            return _make_bwrap()
        except FileNotFoundError as exc:
            raise SandboxUnavailable(f"{exc}, or use --sandbox process") from exc
    try:
        return _make_docker(progress)
    except SandboxUnavailable as exc:
        if kind == "docker":
            raise
        fallback, why = _make_fallback()
        progress(
            f"warning: Docker sandbox unavailable ({exc}); using the weaker {fallback.kind} sandbox{why}"
        )
        return fallback


def _pool_size() -> int:
    return int(os.environ.get("COCO_SANDBOX_POOL", "2") or 0)


def _make_bwrap() -> Sandbox:
    """Warm bubblewrap workers; COCO_SANDBOX_POOL=0 selects a fresh bubblewrap per job instead."""
    from coco_agent.sandbox.bwrap_pool import BwrapPoolSandbox
    from coco_agent.sandbox.process_sandbox import ProcessSandbox

    size = _pool_size()
    return BwrapPoolSandbox(pool_size=size) if size > 0 else ProcessSandbox(bubblewrap=True)


def _make_fallback() -> tuple[Sandbox, str]:
    """bubblewrap when installed and its worker starts here, else the plain subprocess (and why)."""
    from coco_agent.sandbox.process_sandbox import ProcessSandbox

    if not shutil.which("bwrap"):
        return ProcessSandbox(bubblewrap=False), " (bubblewrap is not installed)"
    sandbox = _make_bwrap()
    warm = getattr(sandbox, "warm", None)
    if warm is None or warm(1):
        return sandbox, ""
    sandbox.close()
    return ProcessSandbox(bubblewrap=False), " (bubblewrap is installed but cannot start its worker here)"


def _make_docker(progress: Callable[[str], None]) -> Sandbox:
    """The warm container pool; COCO_SANDBOX_POOL=0 selects one fresh container per job instead."""
    from coco_agent.sandbox.docker_sandbox import DockerSandbox
    from coco_agent.sandbox.image import build_image, docker_client
    from coco_agent.sandbox.pool import PoolSandbox

    client = docker_client()
    tag = build_image(progress=progress, client=client)
    pool_size = _pool_size()
    if pool_size <= 0:
        return DockerSandbox(client=client, image=tag)
    return PoolSandbox(client=client, image=tag, pool_size=pool_size)


def close_sandboxes() -> None:
    """Close every cached sandbox (removes this process's containers, kills its bubblewrap workers)."""
    with _lock:
        for sandbox in _cache.values():
            sandbox.close()
        _cache.clear()
