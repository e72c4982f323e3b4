"""DockerSandbox: one hardened, throw-away container per job, talking frames over the attach socket."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time

from coco_agent.sandbox.base import (
    Format,
    RenderResult,
    SandboxLimits,
    SandboxUnavailable,
    encode_source,
    result_from_frame,
)
from coco_agent.sandbox.frames import FrameReader, encode_frame
from coco_agent.sandbox.image import CONTAINER_ENV, SANDBOX_UID, WORKER_PATH, docker_client, image_tag

LABEL = "coco-agent.sandbox"
OWNER_LABEL = "coco-agent.owner"
STDERR_CAP = 16 * 1024


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


class DockerSandbox:
    """Runs each job in a fresh hardened container (no network, read-only root, no capabilities...).

    The worker inside enforces the job deadline; the host kills the container when `timeout + startup_grace_s`
    passes without a result. Containers are removed in the background right after the result arrives.
    """

    kind = "docker"

    def __init__(
        self,
        client=None,
        image: str | None = None,
        limits: SandboxLimits | None = None,
        tmpfs_mb: int = 64,
        startup_grace_s: float = 20.0,
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
        self.tmpfs_mb = tmpfs_mb
        self.startup_grace_s = startup_grace_s
        self.owner = owner_id()
        self._cleanups: list[threading.Thread] = []
        self._lock = threading.Lock()
        reap(self.client)

    # ------------------------------------------------------------------ public
    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult:
        """Run `code` (format `fmt`) in a new container and return the validated PNG or the failure."""
        limits = limits or self.limits
        started = time.monotonic()
        source, refused = encode_source(code, limits)
        if refused:
            return self._result("rejected", started, error=refused)
        container = self._create(limits)
        try:
            result = self._run(container, source, fmt, limits, started)
        finally:
            self._remove_later(container)
        return result

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

    # ------------------------------------------------------------------ container
    def _create(self, limits: SandboxLimits, command: list[str] | None = None) -> str:
        """Create (not start) a hardened container; returns its id. Low-level API: it knows StdinOnce.

        `command` defaults to a one-job worker; the warm pool passes a long-lived one.
        """
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
            security_opt=["no-new-privileges"],
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=limits.pids,
            nano_cpus=int(limits.cpus * 1e9),
            ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=1024, hard=1024)],
            ipc_mode="private",
            log_config=LogConfig(type="none"),
        )
        created = api.create_container(
            self.image,
            command=command or ["python3", "-I", "-B", WORKER_PATH, "--oneshot"],
            stdin_open=True,  # with detach=False this also sets StdinOnce: our EOF closes its stdin
            tty=False,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            environment=dict(CONTAINER_ENV),
            working_dir="/tmp",
            hostname="sandbox",
            labels={LABEL: "1", OWNER_LABEL: self.owner},
            host_config=host_config,
        )
        return created["Id"]

    def _run(
        self, container: str, source: bytes, fmt: Format, limits: SandboxLimits, started: float
    ) -> RenderResult:
        api = self.client.api
        sock = api.attach_socket(container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw = getattr(sock, "_sock", sock)
        try:
            api.start(container)
            job = {
                "type": "job",
                "id": container[:12],
                "format": fmt,
                "timeout": limits.timeout_s,
                "limits": {
                    "output_bytes": limits.output_bytes,
                    "max_png_bytes": limits.max_png_bytes,
                    "max_pixels": limits.max_pixels,
                    "file_bytes": self.tmpfs_mb << 20,
                },
            }
            raw.sendall(encode_frame(job, source))
            raw.shutdown(socket.SHUT_WR)  # stdin EOF: the worker exits after this job
            deadline = started + limits.timeout_s + self.startup_grace_s
            header, png, stderr, why = self._read_result(raw, limits, deadline)
        finally:
            sock.close()
            raw.close()  # SocketIO.close() alone leaves the socket open
        if header is None:
            return self._no_result(container, why, stderr, limits, started)
        return self._finish(header, png, stderr, limits, started, container[:12])

    def _read_result(self, raw, limits: SandboxLimits, deadline: float):
        """Demultiplex docker's stream until the worker's result frame, EOF or the deadline."""
        frames = FrameReader(max_payload=limits.max_png_bytes + (1 << 20))
        stderr, pending = bytearray(), bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, b"", bytes(stderr), "deadline"
            ready, _, _ = select.select([raw], [], [], remaining)
            if not ready:
                continue
            chunk = raw.recv(1 << 20)
            if not chunk:
                return None, b"", bytes(stderr), "eof"
            pending += chunk
            while len(pending) >= 8:
                stream, size = pending[0], struct.unpack(">I", pending[4:8])[0]
                if len(pending) < 8 + size:
                    break
                data = bytes(pending[8 : 8 + size])
                del pending[: 8 + size]
                if stream == 2:
                    stderr += data[: max(0, STDERR_CAP - len(stderr))]
                    continue
                try:
                    for header, payload in frames.feed(data):
                        if header.get("type") == "result":
                            return header, payload, bytes(stderr), "result"
                except ValueError as exc:
                    return None, b"", bytes(stderr), f"protocol error: {exc}"

    def _no_result(
        self, container: str, why: str, stderr: bytes, limits: SandboxLimits, started: float
    ) -> RenderResult:
        tail = stderr.decode("utf-8", "replace")[-2000:]
        if why == "deadline":
            self.client.api.kill(container)
            return self._result(
                "timeout",
                started,
                error=f"no result within {limits.timeout_s:g} s + {self.startup_grace_s:g} s grace; the host killed the container",
                stderr=tail,
            )
        try:
            state = self.client.api.wait(container, timeout=10)
            oom = self.client.api.inspect_container(container)["State"].get("OOMKilled", False)
        except Exception:
            state, oom = {}, False
        if oom:
            return self._result(
                "oom", started, error="the container hit its memory limit and was killed", stderr=tail
            )
        return self._result(
            "error",
            started,
            error=f"the sandbox worker ended without a result ({why}, exit status {state.get('StatusCode')}): {tail[-500:]}",
            stderr=tail,
        )

    def _finish(
        self, header: dict, png: bytes, stderr: bytes, limits: SandboxLimits, started: float, cid: str
    ) -> RenderResult:
        result = result_from_frame(self.kind, header, png, limits, started, container=cid)
        if stderr:
            result.extra["worker_stderr"] = stderr.decode("utf-8", "replace")[-2000:]
        return result

    def _result(self, status, started: float, **fields) -> RenderResult:
        return RenderResult(
            status=status, seconds=round(time.monotonic() - started, 3), sandbox=self.kind, **fields
        )

    def _remove_later(self, container: str) -> None:
        def remove() -> None:
            with contextlib.suppress(Exception):  # reap() gets it next time
                self.client.api.remove_container(container, force=True)

        thread = threading.Thread(target=remove, name="coco-sandbox-cleanup", daemon=True)
        thread.start()
        with self._lock:
            self._cleanups = [t for t in self._cleanups if t.is_alive()] + [thread]
