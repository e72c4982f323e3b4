"""Cross-job tier: what one job plants, the next job in the same warm worker must not find.

Each test runs plant-then-check pairs in order through one pool of ONE container (Docker) and one warm
bubblewrap worker, so consecutive jobs share a worker unless the plant made the host recycle it (which is the
other acceptable outcome, and the tests say which happened). A fresh pool per attack could never see these.
The kinds of channel: memory (the parent's heap), the worker's own settings (limits, nice, scheduling, CPU
affinity, I/O priority), IPC that outlives a process (POSIX message queues, System V objects, keyrings), files
in every writable place, monkey-patched modules, and io_uring (refused outright).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from support.procs import descendants

from coco_agent.sandbox import RenderResult, SandboxLimits

BWRAP = shutil.which("bwrap")
LIMITS = SandboxLimits(timeout_s=30, memory_mb=512, pids=32)
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\n"
TOKEN = f"cocox{uuid.uuid4().hex[:10]}"


@pytest.fixture(
    params=[
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("gvisor", marks=pytest.mark.docker),
        "bwrap_warm",
    ]
)
def sandbox(request: pytest.FixtureRequest):
    return request.getfixturevalue(
        {"docker": "one_container", "gvisor": "one_gvisor_container", "bwrap_warm": "one_bwrap_worker"}[
            request.param
        ]
    )


def _run(sandbox, code: str, limits: SandboxLimits = LIMITS) -> RenderResult:
    return sandbox.render(textwrap.dedent(code), "matplotlib", limits)


def _info(result: RenderResult) -> dict:
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; status={result.status} error={result.error[-800:]}"
    return json.loads(lines[-1])


def _worker_of(result: RenderResult) -> str:
    return str(result.extra.get("container") or result.extra.get("worker"))


def _shared(first: RenderResult, second: RenderResult) -> bool:
    """Whether the second job ran in the same worker as the first (not recycled in between)."""
    return _worker_of(first) == _worker_of(second) and not first.extra.get("recycled")


# ---------------------------------------------------------------- memory

SCANNER = """
import hashlib, json, struct

def scan(prefix, digest, size, png_dims):
    hits = {"marker": 0, "png": 0}
    sig = b"\\x89PNG\\r\\n\\x1a\\n"
    with open("/proc/self/maps") as f:
        maps = f.read().splitlines()
    mem = open("/proc/self/mem", "rb", buffering=0)
    chunk, overlap = 8 << 20, 64
    for line in maps:
        parts = line.split()
        if not parts[1].startswith("r") or (len(parts) > 5 and parts[5].startswith("[v")):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        pos = start
        while pos < end:
            try:
                mem.seek(pos)
                data = mem.read(min(chunk + overlap, end - pos))
            except (OSError, ValueError, OverflowError):
                break
            i = data.find(prefix)
            while i >= 0:
                if hashlib.sha256(data[i:i + size]).digest() == digest:
                    hits["marker"] += 1
                i = data.find(prefix, i + 1)
            j = data.find(sig)
            while j >= 0:
                if data[j + 16:j + 24] == struct.pack(">II", *png_dims):
                    hits["png"] += 1
                j = data.find(sig, j + 1)
            pos += chunk
    return hits
"""


def test_no_job_reads_an_earlier_jobs_memory(sandbox):
    """Job A prints and draws a marker (and an oddly sized chart); job B in the same worker scans its own memory
    for both and finds neither. The marker is known to B only by its prefix and hash, so B's own copy of its
    source never matches; A runs the same scan on itself to prove the scanner finds what is there."""
    marker = "cocomark" + uuid.uuid4().hex[:24]
    digest = hashlib.sha256(marker.encode()).digest()
    dims = (437, 291)
    scan_call = f"scan(b'cocomark', {digest!r}, {len(marker)}, {dims!r})"
    plant = (
        SCANNER
        + f"""
import sys
import matplotlib.pyplot as plt
secret = "{marker}"
for _ in range(3000):
    sys.stdout.write(secret + "\\n")
fig = plt.figure(figsize=({dims[0] / 100}, {dims[1] / 100}), dpi=100)
plt.title(secret)
plt.plot([1, 2, 3])
fig.savefig("chart.png", dpi=100)
import io
buf = io.BytesIO()
fig.savefig(buf, format="png", dpi=100)
print(json.dumps({scan_call}))
"""
    )
    first = _run(sandbox, plant)
    assert first.status == "ok", first.error
    assert (first.width, first.height) == dims
    seen = _info(first)
    assert seen["marker"] > 0 and seen["png"] > 0, f"the scanner cannot see A's own data: {seen}"
    second = _run(sandbox, SCANNER + f"print(json.dumps({scan_call}))\n" + PLOT)
    assert second.status == "ok", second.error
    assert _shared(first, second), "the two jobs did not share a worker: the test proves nothing"
    assert _info(second) == {"marker": 0, "png": 0}, "job B found job A's data in its own memory"


# ---------------------------------------------------------------- the worker's own settings

TAMPER = """
import ctypes, json, os, platform, resource
libc = ctypes.CDLL(None, use_errno=True)
IOPRIO_SET = {"x86_64": 251, "aarch64": 30}.get(platform.machine())
out = {}

def attempt(name, fn):
    try:
        fn()
        out[name] = "changed"
    except OSError as exc:
        out[name] = exc.strerror or str(exc)

def ioprio(pid):
    if libc.syscall(IOPRIO_SET, 1, pid, 3 << 13) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

one_cpu = {min(os.sched_getaffinity(0))}
for label, pid in (("pid1", 1), ("parent", os.getppid())):
    attempt(f"{label}:nofile", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (16, 16)))
    attempt(f"{label}:cpu", lambda: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1)))
    attempt(f"{label}:as", lambda: resource.prlimit(pid, resource.RLIMIT_AS, (64 << 20, 64 << 20)))
    attempt(f"{label}:nice", lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
    attempt(f"{label}:sched", lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))
    attempt(f"{label}:affinity", lambda: os.sched_setaffinity(pid, one_cpu))
    attempt(f"{label}:ioprio", lambda: ioprio(pid))
attempt("user:nice", lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19))
attempt("pgrp:nice", lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(1), 19))
print(json.dumps(out))
"""


def test_no_job_changes_the_worker(sandbox):
    """Job A tries to lower its worker's limits, renice it, change its scheduling, affinity and I/O priority
    (PID 1 and its parent); every attempt is refused, or the host recycles the worker. Later jobs run."""
    first = _run(sandbox, TAMPER + PLOT)
    assert first.status == "ok", first.error
    attempts = _info(first)
    changed = sorted(k for k, v in attempts.items() if v == "changed")
    if changed:
        assert first.extra.get("recycled"), f"the job changed its worker ({changed}) and the pool kept it"
    else:
        assert all(v for v in attempts.values()), attempts
    for _ in range(3):
        later = _run(sandbox, PLOT)
        assert later.status == "ok", later.error
    assert not changed, f"a job could change its worker: {changed}"


def _cmdline(pid: int) -> bytes:
    """A process's command line, or b"" when it ended meanwhile (a job's child can exit between the listing
    and the read)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _worker_host_pid(sandbox, result: RenderResult) -> int:
    """The host pid of the worker (PID 1 of the container or namespace) that served `result`."""
    if sandbox.kind == "docker":
        return sandbox.launcher.client.api.inspect_container(result.extra["container"])["State"]["Pid"]
    bwrap_pid = int(str(result.extra["worker"]).rsplit("-", 1)[1])
    workers = [p for p in descendants(bwrap_pid) if b"/opt/coco/worker" in _cmdline(p)]
    return min(workers)  # the first one bwrap started: PID 1 inside


@pytest.mark.skipif(os.geteuid() != 0, reason="renicing another user's process needs root")
@pytest.mark.parametrize("change", ["nice", "affinity", "oom_score_adj"])
def test_a_worker_whose_settings_changed_is_recycled(sandbox, change: str):
    """Whatever changed the worker between jobs (here the host itself, as root), the next job's result says the
    worker's own settings changed and the host retires it instead of reusing it."""
    first = _run(sandbox, PLOT)
    assert first.status == "ok", first.error
    if sandbox.kind == "gvisor":  # the worker lives in gVisor's kernel: change it from inside (docker exec)
        if not _change_inside(sandbox, first, change):
            return  # refused to every process in the container (the job's included): nothing can change it
    else:
        _change_from_host(_worker_host_pid(sandbox, first), change)
    second = _run(sandbox, PLOT)
    assert second.status == "ok", second.error
    if _worker_of(second) == _worker_of(first):  # else the zygote saw it first and stopped: never reused
        assert "worker's own settings changed" in str(second.extra.get("recycled", "")), second.extra
    third = _run(sandbox, PLOT)
    assert third.status == "ok" and _worker_of(third) != _worker_of(first)


CHANGES_INSIDE = {  # run in the container as its user (the worker's uid), without the job's seccomp filter
    "nice": "import os; os.setpriority(os.PRIO_PROCESS, 1, 7)",
    "affinity": (
        "import os; c = os.sched_getaffinity(1); assert len(c) > 1, 'one CPU'; os.sched_setaffinity(1, {min(c)})"
    ),
    "oom_score_adj": "open('/proc/1/oom_score_adj', 'w').write('500')",
}


def _change_inside(sandbox, result: RenderResult, change: str) -> bool:
    """Make the change from a process in the worker's container; False when the sandbox refused it (gVisor
    keeps /proc/1/oom_score_adj read-only even to the worker's own uid)."""
    container = sandbox.launcher.client.containers.get(result.extra["container"])
    code, output = container.exec_run(["python3", "-c", CHANGES_INSIDE[change]])
    if change == "affinity" and b"one CPU" in output:
        pytest.skip("one CPU: no affinity to narrow")
    if code != 0 and change == "oom_score_adj" and b"PermissionError" in output:
        return False
    assert code == 0, output.decode(errors="replace")
    return True


def _change_from_host(pid: int, change: str) -> None:
    if change == "nice":
        os.setpriority(os.PRIO_PROCESS, pid, 7)
    elif change == "affinity":
        cpus = os.sched_getaffinity(pid)
        if len(cpus) < 2:
            pytest.skip("one CPU: no affinity to narrow")
        os.sched_setaffinity(pid, {min(cpus)})
    else:
        Path(f"/proc/{pid}/oom_score_adj").write_text("500")


def test_an_abrupt_exit_counts_as_doubt(sandbox):
    """A job that leaves with os._exit before its picture is captured: an error, and the worker is replaced."""
    first = _run(sandbox, "import os\nos._exit(70)\n")
    assert first.status == "error" and "abruptly" in first.error, (first.status, first.error)
    assert first.extra.get("recycled"), first.extra
    assert _run(sandbox, PLOT).status == "ok"


# ---------------------------------------------------------------- IPC, files, keyrings

IPC_HELPERS = f"""
import ctypes, json, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.mq_open.restype = ctypes.c_int
NAME, KEY = b"/{TOKEN}", {0x5EED0000 + (uuid.uuid4().int % 0xFFFF)}
IPC_CREAT = 0o1000
ADD_KEY, KEYCTL = {{"x86_64": (248, 250), "aarch64": (217, 219)}}[platform.machine()]
KEY_SPEC_USER, KEY_SPEC_SESSION, KEYCTL_SEARCH = -4, -3, 10
"""

IPC_PLANT = """
planted, refused = {}, {}
def attempt(name, made):
    planted[name] = made >= 0
    refused[name] = None if made >= 0 else os.strerror(ctypes.get_errno())
attempt("mqueue", libc.mq_open(NAME, os.O_CREAT | os.O_RDWR, 0o600, None))
attempt("shm", libc.shmget(KEY, 4096, IPC_CREAT | 0o600))
attempt("sem", libc.semget(KEY + 1, 1, IPC_CREAT | 0o600))
attempt("msg", libc.msgget(KEY + 2, IPC_CREAT | 0o600))
for ring in (KEY_SPEC_USER, KEY_SPEC_SESSION):
    attempt(f"key{ring}", libc.syscall(ADD_KEY, b"user", NAME[1:], b"secret", 6, ring))
try:  # the mqueue file system makes a queue from a plain file
    with open(f"/dev/mqueue/{NAME[1:].decode()}-file", "w"):
        planted["mqueue_file"] = True
except OSError as exc:
    planted["mqueue_file"], refused["mqueue_file"] = False, exc.strerror
print(json.dumps({"planted": planted, "refused": refused}))
"""

IPC_CHECK = """
found = {}
fd = libc.mq_open(NAME, os.O_RDONLY, 0, None)
found["mqueue"] = fd >= 0
found["shm"] = libc.shmget(KEY, 0, 0) >= 0
found["sem"] = libc.semget(KEY + 1, 0, 0) >= 0
found["msg"] = libc.msgget(KEY + 2, 0, 0) >= 0
for ring in (KEY_SPEC_USER, KEY_SPEC_SESSION):
    found[f"key{ring}"] = libc.syscall(KEYCTL, KEYCTL_SEARCH, ring, b"user", NAME[1:], 0) >= 0
found["mqueue_file"] = os.path.exists(f"/dev/mqueue/{NAME[1:].decode()}-file")
if os.path.isdir("/dev/mqueue"):
    found["mqueue_files"] = sorted(os.listdir("/dev/mqueue"))
for name in ("shm", "sem", "msg"):
    try:
        with open(f"/proc/sysvipc/{name}") as f:
            found[f"sysv_{name}"] = len(f.read().splitlines()) - 1
    except OSError:
        pass
print(json.dumps(found))
"""


def test_no_ipc_survives_a_job(sandbox):
    """POSIX message queues, System V shared memory, semaphores and message queues, and keyring keys planted by
    one job: the next job finds none of them (refused at creation, removed, or the worker recycled)."""
    first = _run(sandbox, IPC_HELPERS + IPC_PLANT + PLOT)
    assert first.status == "ok", first.error
    report = _info(first)
    planted, refused = report["planted"], report["refused"]
    for kind in ("mqueue", "shm", "sem", "msg"):  # made (then it must be gone), or refused for lack of rights
        assert planted[kind] or refused[kind] == os.strerror(1), (kind, report)
    second = _run(sandbox, IPC_HELPERS + IPC_CHECK + PLOT)
    assert second.status == "ok", second.error
    found = _info(second)
    leftovers = {k: v for k, v in found.items() if v}
    assert leftovers == {}, (
        f"IPC survived the job ({'shared' if _shared(first, second) else 'recycled'}): {found}"
    )


FILES_PLANT = f"""
import json, os
planted, writable_files = [], []
mounts, skip = [], set()
with open("/proc/self/mountinfo") as f:
    for line in f:
        fields = line.split()
        point, options = fields[4], fields[5].split(",")
        fstype = line.split(" - ")[1].split()[0]
        if fstype in ("proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue"):
            skip.add(point)  # not storage (message queues have their own test)
        elif "rw" in options:
            mounts.append(point)
candidates = set(mounts) | {{"/tmp", "/var/tmp", "/dev/shm", "/run", "/run/lock", os.path.expanduser("~"),
                            os.path.dirname(os.getcwd()), os.environ.get("MPLCONFIGDIR", "/tmp")}}
seen = 0
for top in sorted(candidates - skip):
    for root, dirs, files in os.walk(top):
        seen += 1
        if seen > 3000:
            break
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d)) and os.path.join(root, d) not in skip]
        path = os.path.join(root, "{TOKEN}-plant")
        try:
            with open(path, "w") as f:
                f.write("planted")
            planted.append(path)
        except OSError:
            pass
        for name in files:
            full = os.path.join(root, name)
            if name.startswith("{TOKEN}") or not os.path.isfile(full) or os.path.islink(full):
                continue
            if full.startswith(os.getcwd()):
                continue
            if full.startswith(("/proc/", "/dev/")) or not os.access(full, os.W_OK):
                continue
            try:
                with open(full, "a") as f:
                    f.write("{TOKEN}-appended")
                writable_files.append(full)
            except OSError:
                pass
print(json.dumps({{"planted": planted, "writable_files": writable_files}}))
"""


def test_no_file_survives_a_job(sandbox):
    """Job A writes a file into every writable directory it can find (every read-write mount, home, the job
    dir's parent, the matplotlib config) and appends to every existing file it may write; job B finds none of
    A's files and none of its appended text."""
    first = _run(sandbox, FILES_PLANT + PLOT)
    assert first.status == "ok", first.error
    info = _info(first)
    assert info["planted"], "nothing was planted: the test proves nothing"
    check = f"""
        import json, os
        found = [p for p in {info["planted"]!r} if os.path.exists(p)]
        for p in {info["writable_files"]!r}:
            try:
                with open(p, "rb") as f:
                    if b"{TOKEN}" in f.read():
                        found.append(p)
            except OSError:
                pass
        print(json.dumps(found))
    """
    second = _run(sandbox, textwrap.dedent(check) + PLOT)
    assert second.status == "ok", second.error
    assert _shared(first, second)
    assert _info(second) == [], "a file job A wrote reached job B"


POISON = f"""
import os, sys
import matplotlib.figure, matplotlib.pyplot as plt
for path in ["/tmp/{TOKEN}.py", "/dev/shm/{TOKEN}", os.path.join(os.path.dirname(os.getcwd()), "{TOKEN}")]:
    try:
        with open(path, "w") as f:
            f.write("POISON = True\\n")
    except PermissionError:  # the folder of job folders is closed to a job under a uid of its own (gVisor)
        pass
sys.path.insert(0, "/tmp")
plt.plot([1, 2])
plt.savefig("a.png")
matplotlib.figure.Figure.savefig = lambda *a, **k: None
plt.plot = lambda *a, **k: None
os.environ["MPLBACKEND"] = "pdf"
sys.modules["numpy.linalg"] = None
"""


def test_next_job_not_poisoned_in_one_worker(sandbox):
    """Files, monkey-patched modules and environment planted by one job are gone for the next in the same worker."""
    first = _run(sandbox, POISON)
    assert first.status == "ok", first.error
    check = f"""
        import json, os, sys, matplotlib.figure
        try:
            import {TOKEN}  # noqa
            imported = True
        except ImportError:
            imported = False
        import numpy.linalg, matplotlib.pyplot as plt
        patched = "<lambda>" in (matplotlib.figure.Figure.savefig.__name__, plt.plot.__name__)
        print(json.dumps({{"imported": imported, "patched": patched, "backend": os.environ.get("MPLBACKEND")}}))
    """
    second = _run(sandbox, textwrap.dedent(check) + PLOT)
    assert second.status == "ok", second.error
    assert _shared(first, second)
    assert _info(second) == {"imported": False, "patched": False, "backend": "Agg"}


def test_io_uring_is_refused(sandbox):
    """io_uring_setup fails inside a job (EPERM or ENOSYS): a kernel interface no drawing program needs."""
    code = """
        import ctypes, json
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 4, params)
        print(json.dumps({"fd": fd, "errno": ctypes.get_errno()}))
    """
    result = _run(sandbox, textwrap.dedent(code) + PLOT)
    assert result.status == "ok", result.error
    info = _info(result)
    assert info["fd"] == -1 and info["errno"] in (1, 38), info


def test_nothing_left_behind():
    """Keep last: no planted file on the host."""
    for folder in ("/tmp", "/dev/shm"):
        with contextlib.suppress(OSError):
            assert not [n for n in os.listdir(folder) if n.startswith(TOKEN)], folder
    time.sleep(0)
