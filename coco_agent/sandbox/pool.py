"""PoolSandbox: a warm pool of hardened containers, each a long-lived worker that forks a fresh child per job.

Same containers as DockerSandbox (no network, read-only root, no capabilities, memory = memory+swap, pids and
CPU caps, labelled for the reaper); the worker inside has already imported the renderers. A job is one frame
over the container's attach stream; the result comes back as one frame. The worker kills everything the job
started, wipes /tmp and /dev/shm and reports whether the container is clean; the host recycles a container
after `max_jobs` jobs and after any timeout, OOM, crash, protocol error or unclean report. Thread-safe: each
render takes a container for itself, so many runs can share one pool.
"""

from __future__ import annotations

import atexit
import contextlib
import select
import socket
import struct
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

from coco_agent.sandbox.base import Format, RenderResult, SandboxLimits, encode_source
from coco_agent.sandbox.docker_sandbox import STDERR_CAP, DockerSandbox
from coco_agent.sandbox.frames import FrameReader, encode_frame, read_result, recycle_reason
from coco_agent.sandbox.image import WORKER_PATH

Key = tuple[int, int, float]  # container-level limits: memory_mb, pids, cpus


@dataclass
class _Slot:
    """One running pool container and its attach stream."""

    cid: str
    key: Key
    sock: object
    raw: socket.socket
    frames: FrameReader
    pending: bytearray = field(default_factory=bytearray)
    ready: deque = field(default_factory=deque)
    stderr: bytearray = field(default_factory=bytearray)
    jobs: int = 0

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
        header, payload = self.ready.popleft()
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
            self.raw.close()


class PoolSandbox(DockerSandbox):
    """Docker isolation at nearly the cost of a bare render: warm, recycled, hardened containers.

    pool_size: containers `warm()` starts ahead of time; max_containers: most alive at once (renders beyond
    wait for one); max_jobs: jobs per container before it is replaced; job_grace_s: seconds past a job's
    deadline before the host gives up on the worker and kills the container.
    """

    def __init__(
        self,
        client=None,
        image: str | None = None,
        limits: SandboxLimits | None = None,
        tmpfs_mb: int = 64,
        startup_grace_s: float = 20.0,
        pool_size: int = 2,
        max_containers: int = 8,
        max_jobs: int = 200,
        job_grace_s: float = 5.0,
    ) -> None:
        super().__init__(client, image, limits, tmpfs_mb, startup_grace_s)
        self.pool_size, self.max_containers = pool_size, max(1, max_containers, pool_size)
        self.max_jobs, self.job_grace_s = max_jobs, job_grace_s
        self._idle: dict[Key, list[_Slot]] = {}
        self._live = 0
        self._cond = threading.Condition()
        self.recycled = 0  # containers retired (for tests and the bench)
        ref = weakref.ref(self)
        atexit.register(lambda: (s := ref()) is not None and s.close())

    # ------------------------------------------------------------------ public
    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult:
        """Run `code` in a warm pool container and return the validated PNG or the failure."""
        limits = limits or self.limits
        started = time.monotonic()
        source, refused = encode_source(code, limits)
        if refused:
            return self._result("rejected", started, error=refused)
        try:
            slot = self._healthy_slot(_key(limits))
        except Exception as exc:  # the engine refused or the worker never came up
            return self._result("error", started, error=f"cannot start a sandbox container: {exc}")
        header, png, why = None, b"", ""
        try:
            slot.raw.sendall(encode_frame(self._job(slot, fmt, limits), source))
            deadline = time.monotonic() + limits.timeout_s + self.job_grace_s
            header, png, why = read_result(slot.read_frame, deadline)
        except OSError as exc:
            header, why = None, f"eof ({exc})"
        stderr = slot.take_stderr()
        if header is None:
            if why != "deadline":
                with contextlib.suppress(Exception):
                    self.client.api.kill(slot.cid)
            result = self._no_result(slot.cid, why, stderr, limits, started)
            self._retire(slot)
            return result
        slot.jobs += 1
        result = self._finish(header, png, stderr, limits, started, slot.cid[:12])
        result.extra["pool_job"] = slot.jobs
        reason = recycle_reason(header, slot.jobs, self.max_jobs)
        if reason is None:
            self._release(slot)
        else:
            result.extra["recycled"] = reason  # set after RenderResult cleaned its fields: capped there
            self._retire(slot)
        return result

    def warm(self, n: int | None = None, limits: SandboxLimits | None = None) -> int:
        """Start up to `n` (default pool_size) idle containers in parallel; returns how many are idle."""
        key = _key(limits or self.limits)
        want = n if n is not None else self.pool_size
        with self._cond:
            want = min(want - len(self._idle.get(key, [])), self.max_containers - self._live)
            self._live += max(0, want)
        threads = [threading.Thread(target=self._start_idle, args=(key,)) for _ in range(max(0, want))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._cond:
            return len(self._idle.get(key, []))

    def close(self) -> None:
        """Stop the idle containers, then remove every container this process owns."""
        with self._cond:
            slots = [slot for group in self._idle.values() for slot in group]
            self._idle.clear()
            self._live -= len(slots)
            self._cond.notify_all()
        for slot in slots:
            self._remove(slot)
        super().close()

    # ------------------------------------------------------------------ pool
    def _healthy_slot(self, key: Key) -> _Slot:
        """A container whose worker answers a ping (an idle one may have been removed or killed meanwhile)."""
        for _ in range(self.max_containers + 1):
            slot = self._acquire(key)
            try:
                slot.raw.sendall(encode_frame({"type": "ping"}))
                header, _, _ = slot.read_frame(time.monotonic() + 5)
            except OSError:
                header = None
            if header is not None and header.get("type") == "pong":
                return slot
            self._retire(slot)
        return self._acquire(key)

    def _acquire(self, key: Key) -> _Slot:
        """An idle container with these limits, else a new one (waiting while `max_containers` are busy)."""
        victim = None
        with self._cond:
            while True:
                if self._idle.get(key):
                    return self._idle[key].pop()
                if self._live < self.max_containers:
                    self._live += 1
                    break
                group = next((g for g in self._idle.values() if g), None)
                if group:  # full of idle containers with other limits: one makes room (its place is reused)
                    victim = group.pop()
                    break
                self._cond.wait()
        if victim is not None:
            self._remove(victim)
        try:
            return self._start(key)
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise

    def _start(self, key: Key) -> _Slot:
        """Create, attach and start a pool container; wait for its worker's ready frame."""
        memory_mb, pids, cpus = key
        limits = SandboxLimits(memory_mb=memory_mb, pids=pids, cpus=cpus)
        command = ["python3", "-I", "-B", WORKER_PATH, "--reset", "--max-jobs", str(self.max_jobs)]
        cid = self._create(limits, command)
        api = self.client.api
        try:
            sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            raw = getattr(sock, "_sock", sock)
            api.start(cid)
        except BaseException:
            self._remove_later(cid)
            raise
        slot = _Slot(cid, key, sock, raw, FrameReader(max_payload=64 << 20))
        header, _, why = slot.read_frame(time.monotonic() + self.startup_grace_s)
        if header is None or header.get("type") != "ready":
            tail = slot.take_stderr().decode("utf-8", "replace")[-500:]
            self._remove(slot)
            raise RuntimeError(f"the pool worker did not come up ({why or header}): {tail}")
        return slot

    def _start_idle(self, key: Key) -> None:
        try:
            slot = self._start(key)
        except Exception:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            return
        self._release(slot)

    def _release(self, slot: _Slot) -> None:
        with self._cond:
            self._idle.setdefault(slot.key, []).append(slot)
            self._cond.notify()

    def _retire(self, slot: _Slot) -> None:
        """Remove a container for good and free its place."""
        self._remove(slot)
        with self._cond:
            self._live -= 1
            self.recycled += 1
            self._cond.notify()

    def _remove(self, slot: _Slot) -> None:
        slot.close()  # stdin EOF: a healthy worker exits on its own
        self._remove_later(slot.cid)

    def _job(self, slot: _Slot, fmt: Format, limits: SandboxLimits) -> dict:
        return {
            "type": "job",
            "id": f"{slot.cid[:12]}-{slot.jobs}",
            "format": fmt,
            "timeout": limits.timeout_s,
            "limits": {
                "output_bytes": limits.output_bytes,
                "max_png_bytes": limits.max_png_bytes,
                "max_pixels": limits.max_pixels,
                "file_bytes": self.tmpfs_mb << 20,
            },
        }


def _key(limits: SandboxLimits) -> Key:
    return (limits.memory_mb, limits.pids, limits.cpus)
