"""The sandbox backends, in one table: each a launcher (launchers/) under the one WarmPool, warm or per job.

docker      warm hardened containers (COCO_SANDBOX_POOL=0: a fresh container per job)
gvisor      the same containers under gVisor (Docker's runsc runtime)
bubblewrap  warm bubblewrap workers, for hosts without Docker (COCO_SANDBOX_POOL=0: a fresh one per job)
process     a plain rlimited subprocess per job, the weakest
auto        docker when the engine answers, else bubblewrap when its worker starts, else process (with a warning)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from coco_agent.sandbox.base import Sandbox, SandboxUnavailable
from coco_agent.sandbox.pool import WarmPool

Progress = Callable[[str], None]


def pool_size() -> int:
    """COCO_SANDBOX_POOL: how many workers warm() starts (0: a fresh worker per job); default 2."""
    return int(os.environ.get("COCO_SANDBOX_POOL", "2") or 0)


def warm_or_per_job(launcher, size: int | None = None, **pool) -> WarmPool:
    """`launcher` under the warm pool, or one worker per job when `size` (default COCO_SANDBOX_POOL) is 0."""
    size = pool_size() if size is None else size
    if size <= 0:
        return WarmPool(launcher, pool_size=0, max_jobs=1, **pool)
    return WarmPool(launcher, pool_size=size, **pool)


def docker(progress: Progress) -> Sandbox:
    """Docker: the image is built first when its tag is missing (minutes, once)."""
    from coco_agent.sandbox.image import build_image, docker_client
    from coco_agent.sandbox.launchers.docker import DockerLauncher

    client = docker_client()
    tag = build_image(progress=progress, client=client)
    return warm_or_per_job(DockerLauncher(client=client, image=tag))


def gvisor(progress: Progress) -> Sandbox:
    """Docker under gVisor's runsc runtime; SandboxUnavailable saying how to install it when it is missing."""
    from coco_agent.sandbox.image import build_image, docker_client
    from coco_agent.sandbox.launchers.gvisor import GvisorLauncher

    client = docker_client()
    launcher = GvisorLauncher(client=client, image=build_image(progress=progress, client=client))
    return warm_or_per_job(launcher)


def bubblewrap(progress: Progress) -> Sandbox:
    from coco_agent.sandbox.launchers.bubblewrap import BwrapLauncher

    try:
        return warm_or_per_job(BwrapLauncher())
    except FileNotFoundError as exc:
        raise SandboxUnavailable(f"{exc}, or use --sandbox process") from exc


def process(progress: Progress) -> Sandbox:
    from coco_agent.sandbox.launchers.process import ProcessLauncher

    return WarmPool(ProcessLauncher(), pool_size=0, max_jobs=1)


@dataclass(frozen=True)
class Backend:
    """One choice of --sandbox."""

    name: str
    make: Callable[[Progress], Sandbox]
    summary: str


BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("docker", docker, "warm hardened containers (the default where Docker runs)"),
        Backend("gvisor", gvisor, "the same containers under gVisor's runsc runtime (a user-space kernel)"),
        Backend("bubblewrap", bubblewrap, "warm bubblewrap workers, for hosts without Docker"),
        Backend("process", process, "an rlimited subprocess per job (weakest)"),
    )
}
KINDS = ("auto", *BACKENDS)


def make(kind: str, progress: Progress) -> Sandbox:
    """A new sandbox of `kind` (see the module docstring); auto falls back with a warning through `progress`."""
    if kind != "auto":
        return BACKENDS[kind].make(progress)
    try:
        return docker(progress)
    except SandboxUnavailable as exc:
        fallback, why = _fallback(progress)
        progress(
            f"warning: Docker sandbox unavailable ({exc}); using the weaker {fallback.kind} sandbox{why}"
        )
        return fallback


def _fallback(progress: Progress) -> tuple[Sandbox, str]:
    """bubblewrap when installed and its worker starts here, else the plain subprocess (and why)."""
    if not shutil.which("bwrap"):
        return process(progress), " (bubblewrap is not installed)"
    sandbox = bubblewrap(progress)
    if sandbox.warm(1):
        return sandbox, ""
    sandbox.close()
    return process(progress), " (bubblewrap is installed but cannot start its worker here)"
