"""gVisor: the Docker pool under Debian's `runsc` runtime, so a job's system calls meet gVisor's user-space
kernel instead of the host's (a kernel exploit from a job must first escape gVisor).

Set-up (scripts/bootstrap.sh does it): `apt-get install runsc`, then in /etc/docker/daemon.json
``{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}}}``
and reload dockerd (SIGHUP). Everything else is the Docker launcher's: the same image, limits and hardening.
A runsc start that fails can leave its shim, gofer and sandbox processes running after Docker forgot the
container (invisible to `docker ps`): this launcher remembers the ids of the containers it created and kills
any such process whose command line names one of them (only ours), after a failed start and at close().
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Hashable, Iterable

from coco_agent.sandbox.base import SandboxUnavailable
from coco_agent.sandbox.launchers.docker import Container, DockerLauncher

RUNTIME = "runsc"
INSTALL = (
    "install gVisor and register it with Docker: apt-get install runsc; add "
    '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}}} '
    "to /etc/docker/daemon.json; reload dockerd (kill -HUP $(pidof dockerd)); or run scripts/bootstrap.sh"
)
RUNSC_WORDS = ("runsc", "containerd-shim")
# The container's pids cgroup also counts gVisor's own host threads (the Sentry's Go runtime, the gofer, and with
# the ptrace platform a stub per sandboxed thread): ~40 at rest, measured; with a warm Chromium 558 (its ~100
# threads each cost gVisor a few). A container gets PIDS_OVERHEAD more than the job's limit, and a warm-service
# container SERVICE_PIDS_FACTOR times its format's count on top.
PIDS_OVERHEAD = 128
SERVICE_PIDS_FACTOR = 4


def runsc_registered(client) -> bool:
    """Whether the Docker engine knows the runsc runtime."""
    try:
        return RUNTIME in (client.info().get("Runtimes") or {})
    except Exception:
        return False


def runsc_processes(container_ids: Iterable[str]) -> list[int]:
    """Pids of runsc (runsc, runsc-gofer, runsc-sandbox) and containerd-shim processes whose command line names
    one of `container_ids` (full ids: a prefix could name another container)."""
    ids = [cid.encode() for cid in container_ids if len(cid) >= 32]
    if not ids:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        program = os.path.basename(words[0].decode(errors="replace")) if words else ""
        runsc = any(word in program for word in RUNSC_WORDS)
        if runsc and any(cid in w for w in words for cid in ids):
            found.append(int(entry))
    return found


def kill_runsc_leftovers(container_ids: Iterable[str]) -> int:
    """SIGKILL what runsc left for these containers; how many processes."""
    pids = runsc_processes(container_ids)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class GvisorLauncher(DockerLauncher):
    """Worker containers of the sandbox image under Docker's runsc runtime (gVisor)."""

    kind = "gvisor"

    def __init__(self, client=None, image: str | None = None, **options) -> None:
        from coco_agent.sandbox.image import docker_client

        client = client or docker_client()
        if not runsc_registered(client):
            raise SandboxUnavailable(f"the Docker engine has no runsc (gVisor) runtime: {INSTALL}")
        self.created: set[str] = set()
        super().__init__(client=client, image=image, runtime=RUNTIME, **options)

    def key(self, limits, fmt="matplotlib"):
        memory_mb, pids, cpus, service = super().key(limits, fmt)
        return (memory_mb, pids * (SERVICE_PIDS_FACTOR if service else 1) + PIDS_OVERHEAD, cpus, service)

    def _create(self, limits, serve: list[str]) -> str:
        cid = super()._create(limits, serve)
        self.created.add(cid)
        return cid

    def start(self, key: Hashable, max_jobs: int) -> Container:
        before = set(self.created)
        try:
            return super().start(key, max_jobs)
        except BaseException:
            for thread in list(self._cleanups):
                thread.join(timeout=30)
            kill_runsc_leftovers(self.created - before)
            raise

    def close(self) -> None:
        super().close()
        kill_runsc_leftovers(self.created)
        self.created.clear()
