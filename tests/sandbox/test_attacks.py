"""Attacks on the sandboxes, one test per attack, each asserting the safe outcome.

Every attack runs against the Docker sandbox (marker `docker`) and, in their own parametrisations, against the
warm bubblewrap workers, the plain-process fallback, and per-job bubblewrap where its namespaces matter. What a
fallback cannot stop is listed in `WEAK` and marked as a strict expected failure, so the list stays true: an
attack that starts failing or passing unexpectedly breaks the run. Attacks already covered by
test_sandbox_docker.py run here for the fallbacks only.

Attacks that would harm the host if they succeeded are bounded (a fork "bomb" of 200 sleepers, 160 MB of disk,
4 x 150 MB of memory) or aimed at processes and folders this file creates. Nothing is sent off this machine:
network attacks target a listener on the host's 127.0.0.1, and the route table shows there is nowhere else to go.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import textwrap
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import replace

import pytest
from support.procs import descendants
from support.programs import forge_result

from coco_agent.sandbox import RenderResult, SandboxLimits, decode_png
from coco_agent.sandbox.base import MAX_TEXT, STATUSES
from coco_agent.sandbox.frames import FrameReader
from coco_agent.sandbox.launchers import BwrapLauncher, ProcessLauncher
from coco_agent.sandbox.launchers.bubblewrap import bwrap_supports
from coco_agent.sandbox.launchers.docker import OWNER_LABEL
from coco_agent.sandbox.pool import WarmPool

KINDS = ("docker", "gvisor", "bwrap_warm", "bubblewrap", "process")
TOKEN = f"cocoattack{uuid.uuid4().hex[:12]}"  # names every file and process the attacks plant
LIMITS = SandboxLimits(timeout_s=4, memory_mb=256, pids=32)
SHORT = replace(LIMITS, timeout_s=1.5)  # attacks that can only end in a timeout
ROOT = os.geteuid() == 0
BWRAP = shutil.which("bwrap")
BWRAP_SIZED = bool(BWRAP) and bwrap_supports(BWRAP, "--size")
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\n"

ROOT_FORGES = "as root the job opens the worker's protocol pipes through /proc and forges its result"
BWRAP_WEAK: dict[str, str | None] = {
    "fork_bomb": "no pids limit: forks are not refused (RLIMIT_NPROC counts the host user, root ignores it); "
    "the worker kills a job over the limit at its next 50 ms check",
    "disk_fill": None if BWRAP_SIZED else "no --size in this bubblewrap: tmpfs up to half the RAM",
    "inodes": "bubblewrap cannot cap a tmpfs's inodes (kernel memory of the host)",
    "privileges": "keeps the caller's uid 0 (without capabilities)" if ROOT else None,
}
# What the fallbacks cannot stop (the README lists these). None: the attack is stopped there too.
WEAK: dict[str, dict[str, str | None]] = {
    "bwrap_warm": BWRAP_WEAK,
    "bubblewrap": BWRAP_WEAK,
    "process": {
        "fork_bomb": "no pids limit: RLIMIT_NPROC counts the host user's processes (and root ignores it)",
        "memory_children": "RLIMIT_AS is per process: each forked child gets the whole memory allowance",
        "disk_fill": "writes the host's temp dir and /dev/shm, with no size cap",
        "inodes": "no inode cap on the host's temp dir",
        "host_secrets": "runs as the calling user: reads their files and other processes' environments",
        "network": "shares the host's network namespace: reaches services on 127.0.0.1",
        "write_outside": "writes wherever the calling user can",
        "poison_next_job": "/tmp and /dev/shm are the host's, shared by every job",
        "kill_host_process": "the job can signal every process of the calling user",
        "privileges": "keeps the caller's uid and capabilities, without no-new-privileges",
        "fake_frames": ROOT_FORGES if ROOT else None,
    },
}


# Attacks on the worker's and the host client's own code, which the per-job fallbacks share: bubblewrap's
# namespaces change nothing there, so they run on the plain process fallback only. The warm bubblewrap worker
# has a host client of its own: every attack runs against it.
NAMESPACE_BLIND = {"swallow_baseexception", "cpu_bound_c_call", "memory_bomb", "giant_figure", "stdout_flood"}
NAMESPACE_BLIND |= {"bad_text", "output_tricks", "png_bomb", "forged_fields", "big_source", "bad_source"}
NAMESPACE_BLIND |= {"svg_xxe", "svg_billion_laughs", "svg_file_href", "svg_http_href", "svg_giant_canvas"}
NAMESPACE_BLIND |= {"svg_use_amplification", "svg_data_image"}


def kinds(attack: str, docker: bool = True) -> list:
    """Parameters for the `sandbox` fixture: docker (unless already covered elsewhere) and the fallbacks."""
    params = []
    for kind in KINDS:
        if (kind == "docker" and not docker) or (kind == "bubblewrap" and attack in NAMESPACE_BLIND):
            continue
        marks: list = [pytest.mark.docker] if kind in ("docker", "gvisor") else []
        reason = WEAK.get(kind, {}).get(attack)
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(kind, marks=marks, id=kind))
    return params


def _bwrap_usable(sandbox) -> None:
    """Skip where bubblewrap is missing or cannot make namespaces here."""
    probe = sandbox.render("x = 1\n", "matplotlib", SandboxLimits(timeout_s=20))
    if probe.status != "no_image":
        sandbox.close()
        pytest.skip(f"bubblewrap cannot run here: {probe.error[-300:]}")


@pytest.fixture(scope="module")
def bwrap_sandbox() -> WarmPool:
    """The per-job bubblewrap fallback (COCO_SANDBOX_POOL=0)."""
    if not BWRAP:
        pytest.skip("bubblewrap is not installed (optional)")
    sandbox = WarmPool(BwrapLauncher(startup_grace_s=5), pool_size=0, max_jobs=1)
    _bwrap_usable(sandbox)
    return sandbox


@pytest.fixture(scope="module")
def bwrap_warm_sandbox() -> Iterator[WarmPool]:
    """The warm bubblewrap workers, the default without Docker where bubblewrap is installed."""
    if not BWRAP:
        pytest.skip("bubblewrap is not installed (optional)")
    sandbox = WarmPool(BwrapLauncher(), pool_size=1, max_workers=2)
    _bwrap_usable(sandbox)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def plain_sandbox() -> WarmPool:
    """The rlimited subprocess fallback (no namespaces)."""
    return WarmPool(ProcessLauncher(startup_grace_s=5), pool_size=0, max_jobs=1)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest):
    """The sandbox named by the test's parameter."""
    name = {
        "docker": "docker_sandbox",
        "gvisor": "gvisor_sandbox",
        "bwrap_warm": "bwrap_warm_sandbox",
        "bubblewrap": "bwrap_sandbox",
        "process": "plain_sandbox",
    }
    return request.getfixturevalue(name[request.param])


# ---------------------------------------------------------------- helpers


def _run(sandbox, code: str, fmt: str = "matplotlib", limits: SandboxLimits = LIMITS) -> RenderResult:
    """Render and check what every result must be, whatever the attack: a known status, safe text."""
    result = sandbox.render(textwrap.dedent(code), fmt, limits)
    assert result.status in STATUSES
    assert (result.png is not None) == (result.status == "ok"), (result.status, result.error)
    text = json.dumps(result.summary(), ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates
    assert "\x00" not in text
    return result


def _info(result: RenderResult) -> dict:
    """The JSON object a job printed on its last stdout line."""
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; status={result.status} error={result.error[-800:]}"
    return json.loads(lines[-1])


def _host_pids(marker: str) -> list[int]:
    """Pids on this host (containers included) whose command line holds `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _cmdline(pid: int) -> set[str]:
    """The base names of a process's command-line words (empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return {os.path.basename(w.decode(errors="replace")) for w in f.read().split(b"\0") if w}
    except OSError:
        return set()


def _kill_marked(marker: str) -> None:
    for pid in _host_pids(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _remove_planted() -> None:
    """Remove what an attack that succeeded on the host planted in its shared folders."""
    for folder in ("/tmp", "/dev/shm", os.path.expanduser("~")):
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                if name.startswith(TOKEN):
                    path = os.path.join(folder, name)
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    else:
                        os.unlink(path)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, rows: bytes = b"\0\xff\0\0") -> bytes:
    """A PNG whose IHDR claims width x height (RGB); `rows` is the (tiny) compressed pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


BOMB = _png(100_000, 100_000, b"\0" * 4096)
RED_PIXEL = _png(1, 1)


@pytest.fixture
def host_process() -> Iterator[tuple[subprocess.Popen, str]]:
    """A host process (its own session) holding a secret in its environment: (process, secret)."""
    secret = "envsecret-" + uuid.uuid4().hex
    env = {"PATH": "/usr/bin:/bin", "COCO_ATTACK_SECRET": secret}
    proc = subprocess.Popen(["sleep", "120"], env=env, start_new_session=True)
    try:
        yield proc, secret
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- CPU and time


@pytest.mark.parametrize("sandbox", kinds("swallow_baseexception"), indirect=True)
def test_loop_swallowing_baseexception_and_signals(sandbox):
    """Catchable signals ignored, every exception swallowed: only SIGKILL from outside ends it."""
    code = """
        import signal
        for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGXCPU", "SIGALRM", "SIGUSR1", "SIGQUIT"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
    """
    started = time.monotonic()
    result = _run(sandbox, code, limits=SHORT)
    assert result.status == "timeout", result.error
    assert (
        time.monotonic() - started < SHORT.timeout_s + 20
    )  # killed, not left running for hours (loose: busy hosts)


@pytest.mark.parametrize("sandbox", kinds("cpu_bound_c_call"), indirect=True)
def test_cpu_bound_c_call(sandbox):
    """Catastrophic regex backtracking: hours inside C, where no Python signal handler ever runs."""
    code = "import re\nre.match(r'(a|aa)+$', 'a' * 64 + 'b')\n"
    started = time.monotonic()
    result = _run(sandbox, code, limits=SHORT)
    assert result.status == "timeout", result.error
    assert (
        time.monotonic() - started < SHORT.timeout_s + 20
    )  # killed, not left running for hours (loose: busy hosts)


# ---------------------------------------------------------------- memory


MEMORY_BOMBS = {
    "numpy-at-once": "import numpy as np\na = np.ones((20000, 20000))\n",
    "numpy-gradual": "import numpy as np\nkeep = []\nwhile True:\n    keep.append(np.ones(8 << 20))\n",
    "python": "keep = []\nwhile True:\n    keep.append(b'x' * (32 << 20))\n",
}


@pytest.mark.parametrize(
    ("sandbox", "bomb"),
    [
        pytest.param(*p.values, "numpy-at-once", marks=p.marks, id=f"{p.id}-numpy-at-once")
        for p in kinds("memory_bomb")
    ]
    + [
        pytest.param(*p.values, "numpy-gradual", marks=p.marks, id=f"{p.id}-numpy-gradual")
        for p in kinds("memory_bomb")
    ]
    + [
        pytest.param(*p.values, "python", marks=p.marks, id=f"{p.id}-python")
        for p in kinds("memory_bomb", docker=False)
    ],
    indirect=["sandbox"],
)
def test_memory_bomb(sandbox, bomb: str):
    result = _run(sandbox, MEMORY_BOMBS[bomb])
    assert result.status == "oom", (result.status, result.error)


@pytest.mark.parametrize("sandbox", kinds("memory_children"), indirect=True)
def test_memory_spread_over_children(sandbox):
    """Four children of 150 MB each: the limit (256 MB) must hold for the job as a whole."""
    code = """
        import json, os, time
        pids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                try:
                    block = b"x" * (150 << 20)
                    time.sleep(0.5)
                    os._exit(0)
                except MemoryError:
                    os._exit(3)
            pids.append(pid)
        held = 0
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            held += os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        print(json.dumps({"held": held}))
    """
    result = _run(sandbox, code)
    if result.status == "no_image":
        assert _info(result)["held"] <= 1, "more than the memory limit was held at once"
    else:
        assert result.status in {"oom", "error"}, result.error


GIANT_FIGURES = {
    # caught by the worker's pixel cap before anything is rasterised
    "savefig-high-dpi": "fig = plt.figure(figsize=(1000, 1000), dpi=300)\nplt.plot([1, 2])\n"
    "fig.savefig('big.png', dpi=300)\n",
    # bypasses savefig: Agg allocates 60000 x 60000 x 4 bytes itself
    "canvas-draw": "fig = plt.figure(figsize=(600, 600), dpi=100)\nfig.canvas.draw()\n",
    # a small figure whose tight bounding box reaches 16000 x 12000 px
    "tight-bbox": "fig = plt.figure(figsize=(4, 3))\nplt.plot([1, 2])\nfig.text(40, 40, 'far away')\n"
    "fig.savefig('t.png', bbox_inches='tight')\n",
    # a numpy integer is not an int: the size check must go by value
    "numpy-dpi": "import numpy as np\nfig = plt.figure(figsize=(100, 100))\nplt.plot([1, 2])\n"
    "fig.savefig('n.png', dpi=np.int64(3000))\n",
    "numpy-figsize": "import numpy as np\nfig = plt.figure(figsize=(np.float32(900), np.int16(900)), dpi=np.int64(100))\n"
    "plt.plot([1, 2])\nplt.savefig('n.png')\n",
    "nan-dpi": "fig = plt.figure(figsize=(4, 3))\nplt.plot([1, 2])\nfig.savefig('n.png', dpi=float('inf'))\n",
    "pil-new": "from PIL import Image\nimport numpy as np\nim = Image.new('RGB', (np.int64(60000), 60000))\n",
    "pil-resize": "from PIL import Image\nim = Image.new('RGB', (10, 10)).resize((50000, 50000))\n",
}


@pytest.mark.parametrize("figure", list(GIANT_FIGURES))
@pytest.mark.parametrize("sandbox", kinds("giant_figure"), indirect=True)
def test_giant_figure(sandbox, figure: str):
    """Refused by value before any pixel is allocated (a clear 'rejected', never an OOM kill)."""
    started = time.monotonic()
    result = _run(sandbox, "import matplotlib.pyplot as plt\n" + GIANT_FIGURES[figure])
    assert result.status == "rejected", (result.status, result.error)
    assert "pixel" in result.error, result.error
    assert time.monotonic() - started < LIMITS.timeout_s + 8


# ---------------------------------------------------------------- processes, disk, output


@pytest.mark.parametrize("sandbox", kinds("fork_bomb"), indirect=True)
def test_fork_bomb_bounded(sandbox):
    """Up to 200 sleeping children: the pids limit (32) must stop it. (A real fork bomb: test_sandbox_docker.)

    Under gVisor the limit is RLIMIT_NPROC on the job's own uid, and each forked copy of the warm worker also
    costs 20-40 MB of the container's memory (ptrace platform, measured; more on a loaded machine: 14 forks once
    reached 1 GB in CI), so there the job gets a limit of 12 and 2 GB: with 32 and 256 MB the memory limit would
    end it first, as 'oom', and the process limit go unproven."""
    code = """
        import json, os, time
        forked = 0
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            forked += 1
        print(json.dumps({"forked": forked}))
    """
    limits = replace(LIMITS, pids=12, memory_mb=2048) if sandbox.kind == "gvisor" else LIMITS
    result = _run(sandbox, code, limits=limits)
    assert result.status == "no_image", result.error
    assert _info(result)["forked"] < limits.pids


@pytest.mark.parametrize("sandbox", kinds("disk_fill"), indirect=True)
def test_disk_fill(sandbox):
    """Fill the job's folder and /dev/shm: both are capped, and the picture still comes back."""
    code = f"""
        import json, os

        def fill(prefix, mb):
            written = 0
            try:
                for i in range(mb // 4):
                    with open(f"{{prefix}}{{i}}", "wb") as f:
                        f.write(b"x" * (4 << 20))
                    written += 4
            except OSError as exc:
                return written, exc.strerror
            return written, ""

        tmp, shm = fill("fill-", 160), fill("/dev/shm/{TOKEN}-", 64)
        print(json.dumps({{"tmp_mb": tmp[0], "shm_mb": shm[0], "errors": [tmp[1], shm[1]]}}))
    """
    try:
        result = _run(sandbox, textwrap.dedent(code) + PLOT, limits=replace(LIMITS, memory_mb=512))
    finally:
        _remove_planted()
    assert result.status == "ok", result.error
    info = _info(result)
    assert info["tmp_mb"] <= 64 and info["shm_mb"] <= 16, info


@pytest.mark.parametrize("sandbox", kinds("inodes"), indirect=True)
def test_inode_exhaustion(sandbox):
    """20000 empty files (the cap is 16384): ENOSPC ends it, and the picture still comes back."""
    code = f"""
        import json, os
        made, shm = 0, 0
        try:
            while made < 20000:
                open(f"i{{made}}", "w").close()
                made += 1
        except OSError:
            pass
        try:
            while shm < 1500:
                open(f"/dev/shm/{TOKEN}-{{shm}}", "w").close()
                shm += 1
        except OSError:
            pass
        print(json.dumps({{"made": made, "shm": shm}}))
    """
    try:
        result = _run(sandbox, textwrap.dedent(code) + PLOT, limits=replace(LIMITS, timeout_s=10))
    finally:
        _remove_planted()
    assert result.status == "ok", result.error
    info = _info(result)
    assert info["made"] < 20000 and info["shm"] < 1500, info


@pytest.mark.parametrize("sandbox", kinds("stdout_flood"), indirect=True)
def test_stdout_flood_200mb(sandbox):
    """200 MB on stdout and 20 MB on stderr, raw: capped, and the picture still comes back."""
    code = """
        import os
        chunk = b"\\x00flood\\xff!" * 131072
        for _ in range(200):
            os.write(1, chunk)
        for _ in range(20):
            os.write(2, chunk)
        print("END")
    """
    limits = replace(LIMITS, timeout_s=20, output_bytes=4096)
    started = time.monotonic()
    result = _run(sandbox, textwrap.dedent(code) + PLOT, limits=limits)
    assert result.status == "ok", result.error
    assert len(result.stdout) < 4 * 4096 + 200 and len(result.stderr) < 4 * 4096 + 200  # a NUL reads "\x00"
    assert result.stdout.rstrip().endswith("END") and "bytes dropped" in result.stdout
    assert time.monotonic() - started < 20


BAD_TEXT = {
    "output": """
        import os, sys
        print("nul:\\x00 lone:\\udcff\\ud800 end")
        sys.stdout.flush()
        os.write(1, b"raw:\\xff\\xfe\\x00\\xed\\xa0\\x80\\xc3\\n")
        sys.stderr.write("err:\\ud800\\x00\\n")
        sys.stderr.flush()
        os.write(2, b"\\xff\\x00\\n")
        import matplotlib.pyplot as plt
        plt.plot([1, 2])
        plt.savefig(os.fsdecode(b"chart-\\xff\\xfe\\x01.png"))
    """,
    "error": "raise ValueError('bad \\ud800 \\x00 \\udcff ' + 'x' * 100)\n",
}


@pytest.mark.parametrize("where", list(BAD_TEXT))
@pytest.mark.parametrize("sandbox", kinds("bad_text"), indirect=True)
def test_nul_bytes_and_bad_unicode(sandbox, where: str):
    """NUL bytes, undecodable bytes and lone surrogates in output, error and file name: all come back clean."""
    result = _run(sandbox, BAD_TEXT[where])  # _run checks every field is valid UTF-8 without NUL
    if where == "output":
        assert result.status == "ok", result.error
        assert "end" in result.stdout and result.extra["captured"].startswith("savefig:chart-")
    else:
        assert result.status == "error" and "ValueError: bad" in result.error


# ---------------------------------------------------------------- isolation


@pytest.mark.parametrize("sandbox", kinds("host_secrets"), indirect=True)
def test_host_secrets_invisible(sandbox, tmp_path, monkeypatch, host_process):
    """A host file, the host's environment and another host process's environment stay out of reach."""
    _proc, env_secret = host_process
    file_secret = "filesecret-" + uuid.uuid4().hex
    (tmp_path / "secret.txt").write_text(file_secret)
    monkeypatch.setenv("COCO_ATTACK_SECRET", env_secret)
    code = f"""
        import glob, json, os
        out = {{"env": {{k: v for k, v in os.environ.items() if "SECRET" in k}}, "environ": []}}
        try:
            out["file"] = open({str(tmp_path / "secret.txt")!r}).read()
        except OSError as exc:
            out["file"] = type(exc).__name__
        for path in glob.glob("/proc/[0-9]*/environ"):
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            out["environ"] += [v.decode() for v in data.split(b"\\0") if v.startswith(b"COCO_ATTACK_SECRET=")]
        print(json.dumps(out))
    """
    result = _run(sandbox, code)
    seen = result.stdout + result.stderr + result.error
    assert _info(result)["env"] == {}
    assert file_secret not in seen and env_secret not in seen


@pytest.mark.parametrize("sandbox", kinds("network", docker=False), indirect=True)
def test_network_isolated(sandbox, listener):
    """Only loopback inside, no routes, the host's 127.0.0.1 unreachable. (Docker: test_sandbox_docker.)"""
    port, accepted = listener
    code = f"""
        import json, socket
        out = {{"ifaces": sorted(n for _, n in socket.if_nameindex())}}
        out["routes"] = [l for l in open("/proc/net/route").read().splitlines()[1:] if l.strip()]
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", {port}))
            out["connect"] = "connected"
        except OSError as exc:
            out["connect"] = type(exc).__name__
        print(json.dumps(out))
    """
    info = _info(_run(sandbox, code))
    time.sleep(0.2)
    assert info["ifaces"] == ["lo"] and info["routes"] == [], info
    assert info["connect"] != "connected" and accepted == []


SYSTEM_DIRS = [
    "/",
    "/etc",
    "/usr/lib/python3/dist-packages",
    "/opt/coco",
    "/var/tmp",
    "/root",
    "/home",
    "/run",
]


@pytest.mark.parametrize("sandbox", kinds("write_outside"), indirect=True)
def test_no_writes_outside_job_dir(sandbox, tmp_path):
    """Only the job's own scratch space (/tmp, /dev/shm: per job) is writable; the root is read-only.

    The process fallback is only aimed at a host folder this test made (it would write real system folders).
    """
    host_dir = tmp_path / "outside"
    host_dir.mkdir()
    targets = [str(host_dir)] + (SYSTEM_DIRS if sandbox.kind != "process" else [])
    code = f"""
        import json, os
        writable = []
        for folder in {targets!r} + ["/tmp", "/dev/shm"]:
            try:
                open(os.path.join(folder, "{TOKEN}-probe"), "x").close()
                writable.append(folder)
            except OSError:
                pass
        print(json.dumps(writable))
    """
    try:
        info = _info(_run(sandbox, code))
    finally:
        _remove_planted()
    assert not list(host_dir.iterdir()), "the job wrote a host folder"
    assert set(info) <= {"/tmp", "/dev/shm"}, info


@pytest.mark.parametrize("sandbox", kinds("poison_next_job"), indirect=True)
def test_next_job_not_poisoned(sandbox):
    """Files planted in /tmp, /dev/shm and home, and monkey-patched modules, are gone for the next job."""
    plant = f"""
        import builtins, json, os, sys
        import matplotlib.figure, matplotlib.pyplot as plt
        planted = []
        home = os.path.expanduser("~")
        for path in ["/tmp/{TOKEN}.py", "/tmp/{TOKEN}-dir/x", "/dev/shm/{TOKEN}", f"{{home}}/{TOKEN}",
                     os.path.join(os.path.dirname(os.getcwd()), "{TOKEN}")]:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write("POISON = True\\n")
                planted.append(path)
            except OSError:
                pass
        sys.stdout.write(json.dumps(planted) + "\\n")
        sys.stdout.flush()
        matplotlib.figure.Figure.savefig = lambda *a, **k: None
        plt.plot = lambda *a, **k: None
        builtins.print = lambda *a, **k: None
        json.dumps = lambda *a, **k: "poisoned"
        os.environ["MPLBACKEND"] = "pdf"
        sys.modules["numpy"] = None
    """
    try:
        first = _run(sandbox, plant)
        planted = json.loads(first.stdout.strip().splitlines()[0])
        assert planted, "the attack planted nothing: it did not run"
        check = f"""
            import json, os, sys
            found = [p for p in {planted!r} if os.path.exists(p)]
            import numpy, matplotlib.figure
            patched = matplotlib.figure.Figure.savefig.__name__ == "<lambda>"
            print(json.dumps({{"found": found, "patched": patched, "backend": os.environ.get("MPLBACKEND")}}))
        """
        second = _run(sandbox, textwrap.dedent(check) + PLOT)
    finally:
        _remove_planted()
    assert second.status == "ok", second.error
    assert _info(second) == {"found": [], "patched": False, "backend": "Agg"}


@pytest.mark.parametrize("sandbox", kinds("background_processes"), indirect=True)
def test_background_processes_die_with_the_job(sandbox):
    """setsid + double fork, nohup, a fork chain that keeps changing pid: none outlives its job.

    Under gVisor each of those processes costs 20-40 MB of the container's memory, so 256 MB ended a fresh
    container's first such job at its memory limit about once in 10 (seen as 'oom' or exit status 137): there
    the job gets 512 MB, which it never reached in 15 fresh containers."""
    code = f"""
        import json, os, signal, subprocess, sys, time
        py, quiet = sys.executable, dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        sleeper = "import time\\nwhile True:\\n    time.sleep(0.05)  # {TOKEN}\\n"
        chain = "import os, time\\nwhile True:\\n    if os.fork():\\n        os._exit(0)\\n    time.sleep(0.2)  # {TOKEN}\\n"
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(py, [py, "-c", sleeper])
            os._exit(0)
        subprocess.Popen(["nohup", py, "-c", sleeper], start_new_session=True, **quiet)
        subprocess.Popen([py, "-c", chain], start_new_session=True, **quiet)
        subprocess.Popen([py, "-c", sleeper], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
                         **quiet)
        time.sleep(0.5)
        running = 0
        for pid in os.listdir("/proc"):
            try:
                running += pid.isdigit() and b"{TOKEN}" in open(f"/proc/{{pid}}/cmdline", "rb").read()
            except OSError:
                pass
        print(json.dumps({{"running": running}}))
    """
    limits = replace(LIMITS, memory_mb=512) if sandbox.kind == "gvisor" else LIMITS
    try:
        result = _run(sandbox, code, limits=limits)
        assert _info(result)["running"] >= 4, "the escapees did not start"
        deadline = time.monotonic() + 5
        while _host_pids(TOKEN) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _host_pids(TOKEN) == [], "a process the job started outlived it"
    finally:
        _kill_marked(TOKEN)


@pytest.mark.parametrize("sandbox", kinds("kill_worker"), indirect=True)
def test_worker_survives_its_job(sandbox):
    """The job signals its worker (PID 1 in Docker) with everything, then draws: the worker still answers."""
    kill_all = (
        sandbox.kind != "process"
    )  # kill(-1) in the process fallback would hit the host user's processes
    code = f"""
        import json, os, signal, time
        sent = {{}}
        for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGSTOP",
                     "SIGKILL"):
            try:
                os.kill(os.getppid(), getattr(signal, name))
                sent[name] = "sent"
            except OSError as exc:
                sent[name] = exc.strerror
        if {kill_all!r}:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.3)
        print(json.dumps(sent))
    """
    result = _run(sandbox, textwrap.dedent(code) + PLOT)
    assert result.status == "ok", result.error


@pytest.mark.parametrize("sandbox", kinds("kill_host_process"), indirect=True)
def test_host_process_unkillable(sandbox, host_process):
    """A host process whose pid the job knows survives SIGKILL to it and to its process group."""
    proc, _secret = host_process
    code = f"""
        import json, os, signal
        out = {{}}
        for name, kill in (("kill", os.kill), ("killpg", os.killpg)):
            try:
                kill({proc.pid}, signal.SIGKILL)
                out[name] = "sent"
            except OSError as exc:
                out[name] = exc.strerror
        print(json.dumps(out))
    """
    _run(sandbox, code)
    time.sleep(0.1)
    assert proc.poll() is None, "the job killed a host process"


@pytest.mark.parametrize("sandbox", kinds("privileges"), indirect=True)
def test_no_privileges_to_escalate(sandbox):
    """Non-root, no capabilities, no-new-privileges (setuid binaries are inert), setuid(0) fails."""
    code = """
        import json, os, shutil, stat, subprocess
        status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
        status = {k: v.split() for k, v in status.items()}
        setuid = []
        for folder in ("/bin", "/sbin", "/usr/bin", "/usr/sbin"):
            for name in os.listdir(folder) if os.path.isdir(folder) else []:
                mode = os.lstat(os.path.join(folder, name)).st_mode
                if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                    setuid.append(os.path.join(folder, name))
        try:
            os.setuid(0)
            setuid0 = os.geteuid() == 0
        except OSError:
            setuid0 = False
        try:
            passwd = subprocess.run(["passwd", "-S", "root"], capture_output=True, text=True, timeout=5).stdout
        except OSError as exc:
            passwd = type(exc).__name__
        import ctypes  # what /proc/self/status may not report (gVisor has no CapAmb), asked of the kernel
        libc = ctypes.CDLL(None, use_errno=True)
        ambient = [cap for cap in range(64) if libc.prctl(47, 1, cap, 0, 0) == 1]  # PR_CAP_AMBIENT_IS_SET
        no_new_privs = libc.prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
        print(json.dumps({"status": status, "setuid": setuid, "setuid0": setuid0, "passwd": passwd,
                          "sudo": shutil.which("sudo"), "ambient": ambient, "no_new_privs": no_new_privs}))
    """
    info = _info(_run(sandbox, code))
    status = info["status"]
    assert "0" not in status["Uid"] + status["Gid"], (status["Uid"], status["Gid"])
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd"):
        assert int(status[cap][0], 16) == 0, cap
    assert int(status.get("CapAmb", ["0"])[0], 16) == 0 and info["ambient"] == []
    assert status.get("NoNewPrivs", ["1"]) == ["1"] and info["no_new_privs"] == 1
    assert not info["setuid0"]
    assert not info["passwd"].startswith("root "), "a setuid binary ran with root's rights"
    if sandbox.kind == "docker":  # our image: no sudo; the runtime's seccomp filter is on
        assert info["sudo"] is None and status["Seccomp"] == ["2"]


# ---------------------------------------------------------------- what comes back


OUTPUT_TRICKS = {
    "symlinks": """
        import os
        os.symlink("/etc/passwd", "chart.png")
        os.symlink("/etc/passwd", "chart.svg")
        os.symlink("/proc/self/environ", "env.png")
        os.symlink("/", "rootfs")
        os.symlink("/usr/share", "share")
    """,
    "fifos": "import os\nos.mkfifo('chart.png')\nos.mkfifo('chart.svg')\n",
    "sparse": f"""
        with open("chart.png", "wb") as f:
            f.write({_png(30000, 30000)!r})
            f.truncate(60 << 20)
        try:
            open("huge.png", "wb").truncate(1 << 40)
        except OSError:
            pass
    """,
}


@pytest.mark.parametrize("trick", list(OUTPUT_TRICKS))
@pytest.mark.parametrize("sandbox", kinds("output_tricks"), indirect=True)
def test_output_symlink_fifo_sparse(sandbox, trick: str):
    """Outputs that are symlinks (to files and folders), FIFOs or sparse giants: never followed, read or hung on."""
    started = time.monotonic()
    result = _run(sandbox, OUTPUT_TRICKS[trick], fmt="pil")
    assert result.status in {"no_image", "rejected", "error"}, result.status
    assert "root:x:0" not in result.error + result.stdout
    assert time.monotonic() - started < LIMITS.timeout_s  # no FIFO was opened
    if trick != "sparse":
        assert result.status == "no_image", result.error


@pytest.mark.parametrize("sandbox", kinds("png_bomb"), indirect=True)
def test_png_bomb_file(sandbox):
    """A tiny PNG claiming 100000 x 100000 left for the worker to pick up: refused before decoding."""
    code = f"open('bomb.png', 'wb').write({BOMB!r})\n"
    result = _run(sandbox, code, fmt="pil")
    assert result.status in {"rejected", "error"}, result.status
    assert "100000" in result.error or "bomb" in result.error.lower(), result.error


@pytest.mark.parametrize("sandbox", kinds("png_bomb"), indirect=True)
def test_png_bomb_forged_result(sandbox):
    """The job writes the bomb straight onto its result pipe, claiming ok: the host refuses it from IHDR."""
    result = _run(sandbox, forge_result({"status": "ok", "error": "", "captured": "forged"}, repr(BOMB)))
    assert result.status == "rejected", (result.status, result.error)
    assert "pixel" in result.error


@pytest.mark.parametrize("sandbox", kinds("forged_fields"), indirect=True)
def test_forged_result_fields(sandbox):
    """A result frame with an unknown status, a non-string error and a megabyte of text: cleaned on the host."""
    header = {"status": "pwned", "error": {"bad": "\ud800\x00" + "e" * 900_000}, "captured": 12345}
    result = _run(sandbox, forge_result(header))
    assert result.status == "error" and "pwned" in result.error
    assert isinstance(result.error, str) and len(result.error) <= MAX_TEXT + 200
    assert result.extra.get("captured") == "12345"


def _busy(sandbox) -> int:
    """Workers (containers) a pool still counts as taken after render() returned: always 0."""
    idle = getattr(sandbox, "_idle", None)
    if idle is None:  # not a pool
        return 0
    return sandbox._live - (sum(map(len, idle.values())) if isinstance(idle, dict) else len(idle))


@pytest.mark.parametrize("sandbox", kinds("forged_fields"), indirect=True)
def test_forged_unhashable_status(sandbox):
    """A result frame whose status is a list: an error result, never a TypeError out of render() that leaves a
    worker taken for good (the bubblewrap fixture has two: two such jobs and every later render waits forever)."""
    result = _run(sandbox, forge_result({"status": ["ok"], "error": "", "captured": "forged"}))
    assert result.status == "error", (result.status, result.error)
    assert _busy(sandbox) == 0


@pytest.mark.parametrize("sandbox", kinds("forged_fields"), indirect=True)
def test_forged_deeply_nested_header(sandbox):
    """An error of 900 nested lists (fine for the worker, near the top of its stack), read by a host deeper in
    its own (render() runs inside the graph): an error result, not a RecursionError out of render()."""
    code = textwrap.dedent(forge_result({"status": "error", "error": "@@"}))
    code = code.replace(".encode()", ".replace('\"@@\"', '[' * 900 + ']' * 900).encode()", 1)

    def deep(n: int) -> RenderResult:
        return deep(n - 1) if n else _run(sandbox, code)

    result = deep(150)
    assert result.status == "error", (result.status, result.error)
    assert _busy(sandbox) == 0


@pytest.mark.parametrize(
    "header",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"payload_len": [1]}',
        b'{"payload_len": Infinity}',
        b'{"a": "\\ud800"}',
    ],
    ids=["deep", "list_len", "infinite_len", "surrogate"],
)
def test_host_frame_reader_refuses_malformed_headers(header: bytes):
    """Whatever bytes arrive (a root job in the process sandbox can write the worker's pipes), the host's frame
    reader returns frames or raises ValueError (a protocol error), nothing else."""
    reader = FrameReader(max_payload=1 << 20)
    try:
        frames = reader.feed(struct.pack(">I", len(header)) + header)
    except ValueError:
        return
    assert all(isinstance(h, dict) for h, _ in frames)


# ---------------------------------------------------------------- SVG


def _svg(body: str, doctype: str = "", size: int = 100) -> str:
    return (
        f'<?xml version="1.0"?>{doctype}<svg xmlns="http://www.w3.org/2000/svg" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{size}" height="{size}">'
        f'<rect width="{size}" height="{size}" fill="white"/>{body}</svg>'
    )


def _blank(result: RenderResult) -> bool:
    """True when the picture has nothing but white in it."""
    return decode_png(result.png, 40_000_000, 32 << 20).convert("L").getextrema()[0] >= 250


def _icon(kind: str) -> str:
    """A picture file that exists inside the sandbox (mpl-data's 'back' icon, dark on transparent)."""
    if kind == "docker":
        return "/usr/share/matplotlib/mpl-data/images/back"
    import matplotlib

    return f"{matplotlib.get_data_path()}/images/back"


@pytest.mark.parametrize("sandbox", kinds("svg_xxe", docker=False), indirect=True)
def test_svg_external_entity(sandbox):
    """XXE on /etc/hostname: refused, never drawn. (Docker: test_sandbox_docker.)"""
    svg = _svg(
        '<text x="5" y="50" font-size="20">&x;</text>',
        '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
    )
    result = _run(sandbox, svg, fmt="svg")
    assert result.status == "error" or _blank(result), result.status


@pytest.mark.parametrize("sandbox", kinds("svg_billion_laughs"), indirect=True)
def test_svg_billion_laughs(sandbox):
    refs = ["".join(f"&l{i - 1};" for _ in range(10)) for i in range(10)]
    entities = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{refs[i]}">' for i in range(1, 10))
    svg = _svg('<text x="5" y="50">&l9;</text>', f"<!DOCTYPE svg [{entities}]>")
    started = time.monotonic()
    result = _run(sandbox, svg, fmt="svg")
    assert result.status == "error", result.status
    assert time.monotonic() - started < LIMITS.timeout_s


@pytest.mark.parametrize("sandbox", kinds("svg_file_href"), indirect=True)
def test_svg_file_references_not_followed(sandbox):
    """<image> of a PNG and of an SVG that exist, <use> into a file, a file stylesheet: nothing is drawn."""
    icon = _icon(sandbox.kind)
    body = (
        f'<image xlink:href="file://{icon}.png" width="100" height="100"/>'
        f'<image href="file://{icon}.svg" x="10" y="10" width="80" height="80"/>'
        f'<use xlink:href="file://{icon}.svg#g1"/>'
        f'<style>@import url("file://{icon}.svg");</style>'
    )
    result = _run(sandbox, _svg(body), fmt="svg")
    assert result.status == "error" or _blank(result), result.status


@pytest.mark.parametrize("sandbox", kinds("svg_http_href"), indirect=True)
def test_svg_http_references_fetch_nothing(sandbox, listener):
    """Every way an SVG names a URL, aimed at a listener on the host's loopback: no connection arrives."""
    port, accepted = listener
    url = f"http://127.0.0.1:{port}"
    body = (
        f'<image xlink:href="{url}/a.png" width="50" height="50"/>'
        f'<image href="{url}/b.svg" width="50" height="50"/>'
        f'<use xlink:href="{url}/c.svg#x"/>'
        f'<style>@import url("{url}/d.css");</style>'
        f'<rect width="10" height="10" style="fill: url({url}/e.svg#p)"/>'
    )
    svg = _svg(body).replace("?>", f'?><?xml-stylesheet href="{url}/f.css" type="text/css"?>', 1)
    result = _run(sandbox, svg, fmt="svg")
    time.sleep(0.3)
    assert accepted == [], "the renderer fetched a URL"
    assert result.status in {"ok", "error"}


@pytest.mark.parametrize("sandbox", kinds("svg_use_amplification"), indirect=True)
def test_svg_use_amplification(sandbox):
    """<use> nested 9 deep, 10 wide: 10^9 rectangles from a 2 KB file. Stopped by the deadline (or refused)."""
    uses = ["".join(f'<use xlink:href="#a{i - 1}"/>' for _ in range(10)) for i in range(10)]
    layers = '<rect id="a0" width="1" height="1"/>' + "".join(
        f'<g id="a{i}">{uses[i]}</g>' for i in range(1, 10)
    )
    svg = _svg(f'<defs>{layers}</defs><use xlink:href="#a9"/>')
    started = time.monotonic()
    result = _run(sandbox, svg, fmt="svg", limits=SHORT)
    assert result.status in {"timeout", "error", "oom"}, result.status
    assert (
        time.monotonic() - started < SHORT.timeout_s + 20
    )  # killed, not left running for hours (loose: busy hosts)


@pytest.mark.parametrize("sandbox", kinds("svg_giant_canvas"), indirect=True)
@pytest.mark.parametrize("size", [100_000, 30_000, "30000mm"])
def test_svg_giant_canvas(sandbox, size):
    """A canvas over the pixel cap is refused before cairo allocates it."""
    result = _run(sandbox, _svg("", size=size), fmt="svg")
    assert result.status == "rejected", (result.status, result.error)
    assert "pixel" in result.error, result.error


@pytest.mark.parametrize("sandbox", kinds("svg_data_image"), indirect=True)
@pytest.mark.parametrize("pattern", [False, True], ids=["image", "pattern"])
def test_svg_inlined_image_bomb(sandbox, pattern: bool):
    """An inlined data: PNG that claims 100000 x 100000 (or a pattern tile that size): refused by its header."""
    import base64

    data = base64.b64encode(BOMB).decode()
    body = f'<image width="10" height="10" xlink:href="data:image/png;base64,{data}"/>'
    if pattern:
        body = (
            '<defs><pattern id="p" width="60000" height="60000" patternUnits="userSpaceOnUse">'
            '<rect width="10" height="10" fill="red"/></pattern></defs><rect width="50" height="50" fill="url(#p)"/>'
        )
    result = _run(sandbox, _svg(body), fmt="svg")
    assert result.status == "rejected", (result.status, result.error)
    assert "pixel" in result.error, result.error


# ---------------------------------------------------------------- protocol and source


@pytest.mark.parametrize("sandbox", kinds("fake_frames"), indirect=True)
def test_fake_frames_are_data(sandbox):
    """A forged 'ok' frame printed, written to fd 1 and 2, and to every fd of the worker via /proc."""
    code = f"""
        import json, os, struct, sys
        png = {RED_PIXEL!r}
        head = json.dumps({{"type": "result", "status": "ok", "error": "", "captured": "forged",
                            "payload_len": len(png)}}).encode()
        frame = struct.pack(">I", len(head)) + head + png
        print(frame.decode("latin-1"), flush=True)
        sys.stdout.buffer.write(frame)
        sys.stdout.flush()
        os.write(1, frame)
        os.write(2, frame)
        worker = os.getppid()  # PID 1 in the container

        def is_pipe(fd):  # never regular files: a root job could overwrite the worker's open font files
            try:
                return os.readlink(f"/proc/{{worker}}/fd/{{fd}}").startswith(("pipe:", "socket:"))
            except PermissionError:  # the protection holds; try the fds anyway (the root is read-only)
                return True
            except OSError:
                return False

        opened = []
        for fd in [str(n) for n in range(64) if is_pipe(n)]:
            try:
                out = os.open(f"/proc/{{worker}}/fd/{{fd}}", os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.write(out, frame)
                opened.append(fd)
            except OSError:
                pass
            finally:
                os.close(out)
        print("\\n" + json.dumps({{"opened": opened}}))
    """
    result = _run(sandbox, code)
    assert result.status == "no_image", (result.status, result.error)
    assert _info(result)["opened"] == []


@pytest.mark.parametrize("sandbox", kinds("big_source"), indirect=True)
def test_5mb_source_rejected_cleanly(sandbox):
    """Over max_source_bytes (1 MB): refused before any container or process starts."""
    started = time.monotonic()
    result = _run(sandbox, "# " + "x" * (5 << 20) + "\n" + PLOT)
    assert result.status == "rejected" and "limit" in result.error
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("sandbox", kinds("big_source"), indirect=True)
def test_5mb_source_runs_when_allowed(sandbox):
    code = ("# " + "x" * 1000 + "\n") * 5000 + PLOT
    result = _run(sandbox, code, limits=replace(LIMITS, max_source_bytes=8 << 20, timeout_s=10))
    assert result.status == "ok", result.error


@pytest.mark.parametrize("sandbox", kinds("bad_source"), indirect=True)
def test_undecodable_source(sandbox):
    """A lone surrogate and a NUL byte in the source: a clean error, not a crash."""
    result = _run(sandbox, "x = '\ud800'\n\x00\n" + PLOT)
    assert result.status == "error", result.status


# ---------------------------------------------------------------- after the suite (keep last)


@pytest.mark.parametrize("kind", [pytest.param("docker", marks=pytest.mark.docker), "fallbacks"])
def test_nothing_leaked(request: pytest.FixtureRequest, kind: str):
    """No labelled container left, no process or file the attacks planted, no worker process alive."""
    if kind == "docker":
        sandbox = request.getfixturevalue("docker_sandbox")
        sandbox.close()
        launcher = sandbox.launcher
        left = launcher.client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={launcher.owner}"})
        assert left == []
    if BWRAP:  # the warm bubblewrap workers are this process's children whichever case runs first
        with contextlib.suppress(pytest.skip.Exception):
            request.getfixturevalue("bwrap_warm_sandbox").close()
    assert _host_pids(TOKEN) == []
    workers = [pid for pid in descendants(os.getpid()) if _cmdline(pid) & {"worker", "bwrap"}]
    assert workers == [], "a sandbox worker outlived its job"
    for folder in ("/tmp", "/dev/shm"):
        assert not [n for n in os.listdir(folder) if n.startswith(TOKEN)], folder
