"""Docker: each worker is a hardened container of the sandbox image, talking frames over its attach stream.

No network, read-only root, small tmpfs with capped inodes, all capabilities dropped, no-new-privileges, a
non-root user, memory = memory+swap, pids and CPU caps, a private IPC namespace, no host mounts, the image's
environment only, labelled with its owner so the reaper removes what a killed agent left. Docker's default
seccomp profile stays on (each job stacks its own filter on it). The memory, pids and CPU caps are fixed when a
container starts: they are the pool's key, so jobs with other caps get containers of their own.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from coco_agent import formats
from coco_agent.sandbox.base import Format, SandboxLimits, SandboxUnavailable
from coco_agent.sandbox.image import CONTAINER_ENV, SANDBOX_UID, WORKER_PATH, docker_client, image_tag
from coco_agent.sandbox.protocol import JOB, READY, FrameReader

LABEL = "coco-agent.sandbox"
OWNER_LABEL = "coco-agent.owner"
STDERR_CAP = 16 * 1024
Key = tuple[
    int, int, float, str
]  # container-level limits: memory_mb, pids, cpus; the warm service ("": none)


def preload_args(service: str) -> list[str]:
    """The worker's --preload for a container of this warm service ('': the Python renderers' default)."""
    return ["--preload", service] if service else []


def _start_time(pid: int) -> str:
    """Kernel start time of `pid` (tells a live owner from a recycled pid); '' when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rfind(b")") + 2 :].split()[19].decode()


def owner_id(pid: int | None = None) -> str:
    """`host:pid:start-time` of the process that owns a container."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname():
        return True  # another host's process: not ours to judge
    return pid.isdigit() and start != "" and _start_time(int(pid)) == start


def reap(client, everything: bool = False) -> int:
    """Remove leftover sandbox containers: those whose owner process is gone, stopped ones, or (everything) all.

    Call at start-up; containers of other live coco processes on this host are left alone.
    """
    removed = 0
    # ignore_removed: the SDK inspects each listed container, and another process's reaper (or an auto-remove)
    # may delete one between the list and the inspect; that raised NotFound and failed this process's start-up.
    listed = client.containers.list(all=True, filters={"label": f"{LABEL}=1"}, ignore_removed=True)
    for container in listed:
        owner = container.labels.get(OWNER_LABEL, "")
        if everything or container.status != "running" or not _owner_alive(owner):
            try:
                container.remove(force=True)
                removed += 1
            except Exception:  # already gone (auto-removed, or a concurrent reaper)
                pass
    return removed


@dataclass
class Container:
    """One running worker container and its attach stream."""

    cid: str
    key: Key
    sock: object
    raw: socket.socket
    frames: FrameReader
    pending: bytearray = field(default_factory=bytearray)
    ready: list = field(default_factory=list)
    stderr: bytearray = field(default_factory=bytearray)
    jobs: int = 0
    fresh: bool = True

    @property
    def name(self) -> str:
        return self.cid[:12]

    def send(self, data: bytes) -> None:
        self.raw.sendall(data)

    def read_frame(self, deadline: float) -> tuple[dict | None, bytes, str]:
        """Next worker frame: (header, payload, '') or (None, b'', why) on deadline, EOF or protocol error."""
        while not self.ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, b"", "deadline"
            if not select.select([self.raw], [], [], remaining)[0]:
                continue
            try:
                chunk = self.raw.recv(1 << 20)
            except OSError as exc:
                return None, b"", f"eof ({exc})"
            if not chunk:
                return None, b"", "eof"
            self.pending += chunk
            try:
                self._demux()
            except ValueError as exc:
                return None, b"", f"protocol error: {exc}"
        header, payload = self.ready.pop(0)
        return header, payload, ""

    def _demux(self) -> None:
        """Split docker's multiplexed stream: stdout is the frame channel, stderr is kept (capped)."""
        while len(self.pending) >= 8:
            stream, size = self.pending[0], struct.unpack(">I", self.pending[4:8])[0]
            if len(self.pending) < 8 + size:
                return
            data = bytes(self.pending[8 : 8 + size])
            del self.pending[: 8 + size]
            if stream == 2:
                self.stderr += data[: max(0, STDERR_CAP - len(self.stderr))]
            else:
                self.ready.extend(self.frames.feed(data))

    def take_stderr(self) -> bytes:
        data = bytes(self.stderr)
        self.stderr.clear()
        return data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.raw.close()  # SocketIO.close() alone leaves the socket open


class DockerLauncher:
    """Starts worker containers of the sandbox image (`runtime`: a Docker runtime such as gVisor's runsc)."""

    kind = "docker"
    name_field = "container"
    user = f"{SANDBOX_UID}:{SANDBOX_UID}"  # the worker's user; everything it starts runs as it too
    worker_caps: tuple[str, ...] = ()  # none
    identity_args: tuple[str, ...] = ()  # the worker's --job-uid/--service-uid (none: all as `user`)

    def __init__(
        self,
        client=None,
        image: str | None = None,
        limits: SandboxLimits | None = None,
        tmpfs_mb: int = 64,
        startup_grace_s: float = 20.0,
        runtime: str | None = None,
    ) -> None:
        import docker

        self.client = client or docker_client()
        self.image = image or image_tag()
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(
                f"the sandbox image {self.image} is missing: build it with `coco sandbox build`"
            ) from exc
        self.limits = limits or SandboxLimits()
        self.tmpfs_mb, self.startup_grace_s, self.runtime = tmpfs_mb, startup_grace_s, runtime
        self.owner = owner_id()
        self._cleanups: list[threading.Thread] = []
        self._lock = threading.Lock()
        reap(self.client)

    def key(self, limits: SandboxLimits, fmt: Format = "matplotlib") -> Key:
        """The container a job needs: its limits, and the warm renderer of its format (a container with a
        browser serves that format only, with the processes the browser needs)."""
        record = formats.get(fmt) if fmt in formats.FORMATS else None
        service, pids = (record.service, max(limits.pids, record.pids)) if record else ("", limits.pids)
        cpus = max(limits.cpus, min(record.cpus, float(os.cpu_count() or 1))) if record else limits.cpus
        return (limits.memory_mb, pids, cpus, service)

    def start(self, key: Hashable, max_jobs: int) -> Container:
        """Create, attach and start a worker container; wait for its ready frame."""
        memory_mb, pids, cpus, service = key
        serve = ["--oneshot"] if max_jobs == 1 else ["--reset", "--max-jobs", str(max_jobs)]
        serve += preload_args(service)
        cid = self._create(SandboxLimits(memory_mb=memory_mb, pids=pids, cpus=cpus), serve)
        api = self.client.api
        try:
            sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            raw = getattr(sock, "_sock", sock)
            api.start(cid)
        except BaseException:
            self._remove_later(cid)
            raise
        container = Container(cid, key, sock, raw, FrameReader(max_payload=64 << 20))
        grace = self.startup_grace_s + (30.0 if service else 0.0)  # a browser or vl-convert warms up first
        header, _, why = container.read_frame(time.monotonic() + grace)
        if header is None or header.get("type") != READY:
            tail = container.take_stderr().decode("utf-8", "replace")[-500:]
            self.stop(container)
            raise RuntimeError(f"the worker container did not come up ({why or header}): {tail}")
        return container

    def job(self, worker: Container, fmt: Format, limits: SandboxLimits) -> dict:
        return {
            "type": JOB,
            "id": f"{worker.name}-{worker.jobs}",
            "format": fmt,
            "timeout": limits.timeout_s,
            "limits": {
                "output_bytes": limits.output_bytes,
                "max_png_bytes": limits.max_png_bytes,
                "max_pixels": limits.max_pixels,
                "file_bytes": self.tmpfs_mb << 20,
                "facts": limits.facts,
                "hide_text": limits.hide_text,
            },
        }

    def failed(self, worker: Container, why: str, stderr: str, limits: SandboxLimits) -> tuple[str, str]:
        """Why a container gave no result: timeout (the host kills it), OOM kill, or the worker's end."""
        api = self.client.api
        if why == "deadline":
            with contextlib.suppress(Exception):
                api.kill(worker.cid)
            return "timeout", (
                f"no result within {limits.timeout_s:g} s + grace; the host killed the container"
            )
        killed = not why.startswith(
            "eof"
        )  # a protocol error: the worker is still there, and not to be trusted
        if killed:
            with contextlib.suppress(Exception):
                api.kill(worker.cid)
        try:
            state = api.wait(worker.cid, timeout=10)
            oom = api.inspect_container(worker.cid)["State"].get("OOMKilled", False)
        except Exception:
            with contextlib.suppress(Exception):
                api.kill(worker.cid)
            state, oom = {}, False
        out_of_memory = self._out_of_memory(bool(oom), state.get("StatusCode"), killed)
        if out_of_memory:
            return "oom", out_of_memory
        return "error", (
            f"the sandbox worker ended without a result ({why}, exit status {state.get('StatusCode')}): "
            f"{stderr[-500:]}"
        )

    def _out_of_memory(self, oom_killed: bool, status: int | None, killed_by_host: bool) -> str:
        """The error of a container killed at its memory limit ('' when it was not): Docker's OOMKilled."""
        return "the container hit its memory limit and was killed" if oom_killed else ""

    def stop(self, worker: Container) -> None:
        """Close the stream (a healthy worker exits on EOF) and remove the container in the background."""
        worker.close()
        self._remove_later(worker.cid)

    def close(self) -> None:
        """Wait for pending removals and remove any container this process still owns."""
        with self._lock:
            pending, self._cleanups = self._cleanups, []
        for thread in pending:
            thread.join(timeout=30)
        for container in self.client.containers.list(
            all=True, filters={"label": f"{OWNER_LABEL}={self.owner}"}, ignore_removed=True
        ):
            with contextlib.suppress(Exception):
                container.remove(force=True)

    # ------------------------------------------------------------------ containers
    def _create(self, limits: SandboxLimits, serve: list[str]) -> str:
        """Create (not start) a hardened worker container; returns its id. Low-level API: it knows StdinOnce."""
        from docker.types import LogConfig, Ulimit

        api = self.client.api
        memory = f"{limits.memory_mb}m"
        host_config = api.create_host_config(
            network_mode="none",
            read_only=True,
            # Capped inode counts: tmpfs inodes are kernel memory, and an unbounded inode bomb got the whole
            # container (worker included) OOM-killed instead of failing the job with ENOSPC.
            tmpfs={
                "/tmp": f"rw,noexec,nosuid,nodev,size={self.tmpfs_mb}m,nr_inodes=16k,mode=1777",
                "/dev/shm": "rw,noexec,nosuid,nodev,size=16m,nr_inodes=1k,mode=1777",
            },
            cap_drop=["ALL"],
            **({"cap_add": list(self.worker_caps)} if self.worker_caps else {}),
            security_opt=["no-new-privileges"],
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=limits.pids,
            nano_cpus=int(limits.cpus * 1e9),
            ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=1024, hard=1024)],
            ipc_mode="private",
            log_config=LogConfig(type="none"),
            **({"runtime": self.runtime} if self.runtime else {}),
        )
        created = api.create_container(
            self.image,
            command=["python3", "-I", "-B", WORKER_PATH, *serve, *self.identity_args],
            stdin_open=True,  # with detach=False this also sets StdinOnce: our EOF closes its stdin
            tty=False,
            user=self.user,
            environment=dict(CONTAINER_ENV),
            working_dir="/tmp",
            hostname="sandbox",
            labels={LABEL: "1", OWNER_LABEL: self.owner},
            host_config=host_config,
        )
        return created["Id"]

    def _remove_later(self, cid: str) -> None:
        def remove() -> None:
            with contextlib.suppress(Exception):  # reap() gets it next time
                self.client.api.remove_container(cid, force=True)

        thread = threading.Thread(target=remove, name="coco-sandbox-cleanup", daemon=True)
        thread.start()
        with self._lock:
            self._cleanups = [t for t in self._cleanups if t.is_alive()] + [thread]
