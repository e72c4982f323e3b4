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
from coco_agent.sandbox.image import JOB_UID, SANDBOX_UID
from coco_agent.sandbox.launchers.docker import Container, DockerLauncher

RUNTIME = "runsc"
INSTALL = (
    "install gVisor and register it with Docker: apt-get install runsc; add "
    '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}}} '
    "to /etc/docker/daemon.json; reload dockerd (kill -HUP $(pidof dockerd)); or run scripts/bootstrap.sh"
)
RUNSC_WORDS = ("runsc", "containerd-shim")
# The container's pids cgroup counts gVisor's own host threads, not the job's processes: the Sentry's Go runtime
# and the gofer (~56 at rest, measured), and with the ptrace platform about 7 more per sandboxed process (31
# sleeping forks: 265); a warm Chromium 558 (its ~100 threads each cost gVisor a few). When the cgroup runs out,
# the Sentry cannot make a thread and dies (exit status 2: the worker "ended without a result"). So the cgroup
# is sized for gVisor, and a job's own processes are bounded inside, by RLIMIT_NPROC on its uid (identity.py).
PIDS_OVERHEAD = 128
PIDS_PER_TASK = 8
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
    """Worker containers of the sandbox image under Docker's runsc runtime (gVisor).

    gVisor's /proc ignores PR_SET_DUMPABLE: a job of the worker's own uid could open the worker's channel
    through /proc/<worker>/fd and forge its result. So here the worker starts as root (gVisor's root, inside the
    sandbox's own kernel) holding only the capabilities it needs to run each job as JOB_UID and each warm
    service as SANDBOX_UID (sandbox/worker/coco_worker/identity.py); jobs end with none, bounding set empty,
    and RLIMIT_NPROC, counted per uid by gVisor's kernel, bounds a job's processes at its pids limit.
    """

    kind = "gvisor"
    user = "0:0"
    worker_caps = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETPCAP", "SETUID")
    identity_args = ("--job-uid", str(JOB_UID), "--service-uid", str(SANDBOX_UID))

    def __init__(self, client=None, image: str | None = None, **options) -> None:
        from coco_agent.sandbox.image import docker_client

        client = client or docker_client()
        if not runsc_registered(client):
            raise SandboxUnavailable(f"the Docker engine has no runsc (gVisor) runtime: {INSTALL}")
        self.created: set[str] = set()
        super().__init__(client=client, image=image, runtime=RUNTIME, **options)

    def key(self, limits, fmt="matplotlib"):
        memory_mb, pids, cpus, service = super().key(limits, fmt)
        host = PIDS_OVERHEAD + PIDS_PER_TASK * limits.pids + (SERVICE_PIDS_FACTOR * pids if service else 0)
        return (memory_mb, host, cpus, service)

    def job(self, worker: Container, fmt, limits) -> dict:
        job = super().job(worker, fmt, limits)
        # the job's own limit (the container's counts gVisor's threads), less the zygote and the runner, which
        # the pids cgroup counts under runc
        job["limits"]["nproc"] = max(1, limits.pids - 2)
        return job

    def _out_of_memory(self, oom_killed: bool, status: int | None, killed_by_host: bool) -> str:
        """As Docker's, and a sandbox SIGKILLed that neither we nor a deadline killed is named for its memory
        limit: at the cgroup's limit runsc's container dies with status 137, and Docker does not always mark it
        OOM-killed (this machine showed both for the same job)."""
        if not oom_killed and status == 137 and not killed_by_host:
            return "the gVisor sandbox was killed (exit status 137): most likely at its memory limit"
        return super()._out_of_memory(oom_killed, status, killed_by_host)

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
