"""The sandbox interface: run one drawing program, get a PNG back (as bytes) or a clear failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

Status = Literal["ok", "error", "timeout", "oom", "no_image", "rejected"]
Format = Literal["matplotlib", "pil", "svg"]


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one job."""

    timeout_s: float = 30.0
    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 64
    output_bytes: int = 64 * 1024  # stdout/stderr kept per stream
    max_png_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_source_bytes: int = 1024 * 1024


@dataclass
class RenderResult:
    """What a sandbox returns for one job. ``png`` holds validated PNG bytes when status is ok."""

    status: Status
    png: bytes | None = None
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    sandbox: str = ""
    width: int = 0
    height: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.png is not None

    def summary(self) -> dict:
        """JSON-safe record without the image bytes."""
        d = asdict(self)
        d.pop("png")
        return d


class Sandbox(Protocol):
    """Anything that can render a program in isolation."""

    kind: str  # "docker", "process", ...

    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult: ...

    def close(self) -> None: ...


class SandboxUnavailable(RuntimeError):
    """The requested sandbox cannot run here; the message names the cause and the fix."""
