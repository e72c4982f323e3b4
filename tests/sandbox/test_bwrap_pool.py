"""The warm bubblewrap workers: reuse, recycling, no job-to-job poisoning, threads, nothing left behind.

Uses its own small pool (one worker at a time) so consecutive jobs provably share a worker. The attacks run in
test_sandbox_attacks.py (parameter `bwrap_warm`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from support.procs import descendants

from coco_agent.sandbox import SandboxLimits

pytestmark = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed (optional)")

LIMITS = SandboxLimits(timeout_s=10)
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\n"


@pytest.fixture(scope="module")
def pool():
    """At most one worker, so that consecutive jobs land in the same one."""
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    sandbox = WarmPool(BwrapLauncher(), pool_size=1, max_workers=1)
    yield sandbox
    sandbox.close()


def _render(pool, code: str, limits: SandboxLimits = LIMITS):
    return pool.render(textwrap.dedent(code), "matplotlib", limits)


def _info(result) -> dict:
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; status={result.status} error={result.error[-800:]}"
    return json.loads(lines[-1])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _tree(root: int) -> list[int]:
    """`root` and its live descendants, from /proc."""
    return [root, *descendants(root)]


def _pid(result) -> int:
    return int(result.extra["worker"].split("-")[1])


def test_jobs_reuse_a_warm_worker(pool):
    assert pool.warm() == 1
    first, second = _render(pool, PLOT), _render(pool, PLOT)
    assert first.status == second.status == "ok", (first.error, second.error)
    assert first.sandbox == "bubblewrap" and first.png.startswith(b"\x89PNG")
    assert first.extra["worker"] == second.extra["worker"]
    assert second.extra["pool_job"] == first.extra["pool_job"] + 1


def test_python_under_tmp_stays_bound_and_workers_are_reused(tmp_path):
    """A Python install under /tmp (a checkout there, its .venv) is bound inside the job's /tmp: the wipe
    between jobs keeps those read-only binds (it used to fail with EROFS and recycle every worker)."""
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "host.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    assert str(venv).startswith("/tmp/")
    sandbox = WarmPool(BwrapLauncher(python=str(venv / "bin" / "python")), pool_size=1, max_workers=1)
    try:
        results = [_render(sandbox, PLOT + f"open('/tmp/junk-{i}', 'w').write('x')\n") for i in range(3)]
        for result in results:
            assert result.status == "ok", result.error
            assert "recycled" not in result.extra, result.extra
        assert len({result.extra["worker"] for result in results}) == 1
        probe = _render(sandbox, "import os\nprint(sorted(os.listdir('/tmp')))\n" + PLOT)
        assert "junk-" not in probe.stdout  # the job's own files were wiped around the binds
    finally:
        sandbox.close()


def test_worker_is_pid_1_without_network_or_capabilities(pool):
    code = """
        import json, os, socket
        status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
        runner = open(f"/proc/{os.getppid()}/stat").read().rsplit(")", 1)[1].split()
        print(json.dumps({"zygote": int(runner[1]), "ifaces": sorted(n for _, n in socket.if_nameindex()),
                          "caps": status["CapEff"].strip(), "nnp": status["NoNewPrivs"].strip()}))
    """
    # the job's parent is its runner, whose parent is the zygote: PID 1 of the namespace
    assert _info(_render(pool, code)) == {"zygote": 1, "ifaces": ["lo"], "caps": "0" * 16, "nnp": "1"}


POISON = """
    import builtins, json, os, sys
    import matplotlib.figure, matplotlib.pyplot as plt
    for path in ["/tmp/{t}.py", "/tmp/{t}-dir/x", "/dev/shm/{t}", "/tmp/jobs/{t}", "/tmp/.cache/{t}",
                 "/tmp/mplconfig/matplotlibrc"]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("lines.linewidth: 50\\n")
    os.makedirs("locked/inner")
    os.chmod("locked", 0)
    os.chmod("/tmp/jobs", 0)
    matplotlib.figure.Figure.savefig = lambda *a, **k: None
    builtins.print = lambda *a, **k: None
    os.environ["MPLBACKEND"] = "pdf"
    sys.modules["numpy"] = None
    sys.stdout.write("planted\\n")
"""

CHECK = """
    import json, os
    import numpy, matplotlib.figure
    print(json.dumps({
        "tmp": sorted(n for n in os.listdir("/tmp") if n != "mplconfig"),
        "jobs": len(os.listdir("/tmp/jobs")),
        "shm": os.listdir("/dev/shm"),
        "rc": os.path.exists("/tmp/mplconfig/matplotlibrc"),
        "patched": matplotlib.figure.Figure.savefig.__name__ == "<lambda>",
        "backend": os.environ.get("MPLBACKEND"),
    }))
"""


def _binds_in_tmp() -> set[str]:
    """Top-level /tmp names that lead to the read-only Python binds (a checkout or venv under /tmp)."""
    prefixes = (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(sys.executable)))
    return {Path(p).relative_to("/tmp").parts[0] for p in prefixes if p.startswith("/tmp/")}


def test_next_job_in_the_same_worker_is_not_poisoned(pool):
    token = f"cocobwrap{uuid.uuid4().hex[:8]}"
    first = _render(pool, POISON.format(t=token))
    assert first.stdout.strip() == "planted", (first.status, first.error)
    second = _render(pool, textwrap.dedent(CHECK) + PLOT)
    assert second.status == "ok", second.error
    assert second.extra["worker"] == first.extra["worker"], "the poisoned worker was not reused"
    info = _info(second)
    assert set(info.pop("tmp")) - _binds_in_tmp() == {"jobs"}
    assert info == {
        "jobs": 1,
        "shm": [],
        "rc": False,
        "patched": False,
        "backend": "Agg",
    }


@pytest.mark.parametrize(
    ("code", "limits", "status"),
    [
        ("while True:\n    pass\n", replace(LIMITS, timeout_s=1), "timeout"),
        (
            "keep = []\nwhile True:\n    keep.append(b'x' * (32 << 20))\n",
            replace(LIMITS, memory_mb=256),
            "oom",
        ),
        ("open('/dev/mqueue/left-behind', 'w').close()\n", LIMITS, "message queues"),
    ],
    ids=["timeout", "oom", "ipc"],
)
def test_failure_or_leftovers_recycle_the_worker(pool, code: str, limits: SandboxLimits, status: str):
    first = _render(pool, code, limits)
    assert status in first.extra["recycled"], (first.status, first.error, first.extra)
    assert not _alive(_pid(first)), "the retired worker is still running"
    second = _render(pool, PLOT, limits)
    assert second.status == "ok" and second.extra["worker"] != first.extra["worker"]


def test_host_kills_a_hung_worker():
    """The worker stops answering mid-job (stopped from outside): the host's own deadline kills it."""
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(BwrapLauncher(), max_workers=1, job_grace_s=1)
    try:
        pid = _pid(_render(pool, PLOT))
        timer = threading.Timer(0.5, lambda: [os.kill(p, signal.SIGSTOP) for p in _tree(pid)])
        timer.start()
        started = time.monotonic()
        result = _render(pool, "import time\ntime.sleep(30)\n", replace(LIMITS, timeout_s=2))
        timer.join()
        assert result.status == "timeout" and "host killed" in result.error, result.error
        assert time.monotonic() - started < 8
        assert not any(_alive(p) for p in _tree(pid) + [pid])
        assert _render(pool, PLOT).status == "ok"
    finally:
        pool.close()


def test_escaped_process_killed_and_worker_reused(pool):
    """A setsid'd sleeper is killed when its job ends; nothing is left, so the worker serves the next job."""
    token = uuid.uuid4().hex[:8]
    code = f"import subprocess\nsubprocess.Popen(['sleep', '60.{token}'], start_new_session=True)\n" + PLOT
    first = _render(pool, code)
    assert first.status == "ok" and "recycled" not in first.extra, (first.error, first.extra)
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as f:
            assert token.encode() not in f.read(), "the sleeper survived"
    assert _render(pool, PLOT).extra["worker"] == first.extra["worker"]


def test_idle_worker_killed_behind_the_pools_back(pool):
    first = _render(pool, PLOT)
    tree = _tree(_pid(first))  # listed before the kill: once bwrap is gone its worker is no longer its child
    os.kill(_pid(first), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = _render(pool, PLOT)
    assert second.status == "ok", second.error
    assert second.extra["worker"] != first.extra["worker"]


def test_recycled_after_max_jobs():
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(BwrapLauncher(), max_workers=1, max_jobs=2)
    try:
        results = [_render(pool, PLOT) for _ in range(3)]
    finally:
        pool.close()
    assert [r.status for r in results] == ["ok"] * 3
    assert results[0].extra["worker"] == results[1].extra["worker"] != results[2].extra["worker"]
    assert results[1].extra["recycled"] == "ok"
    assert not any(_alive(_pid(r)) for r in results)


def test_many_threads_share_one_pool():
    """Eight renders from four threads (which then end) over two workers: each gets its own answer."""
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(BwrapLauncher(), max_workers=2)
    results: dict[int, object] = {}

    def work(i: int) -> None:
        results[i] = _render(pool, f"print({i})\n" + PLOT)

    try:
        for batch in (range(4), range(4, 8)):
            threads = [threading.Thread(target=work, args=(i,)) for i in batch]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert pool._live <= 2
        assert pool.recycled == 0, "workers died with the threads that started them"
    finally:
        pool.close()
    assert sorted(results) == list(range(8))
    for i, result in results.items():
        assert result.status == "ok", result.error
        assert result.stdout.strip() == str(i)
    assert len({r.extra["worker"] for r in results.values()}) <= 2
    assert not any(_alive(_pid(r)) for r in results.values())


AGENT = """
from coco_agent.sandbox.launchers import BwrapLauncher
from coco_agent.sandbox.pool import WarmPool
pool = WarmPool(BwrapLauncher(), pool_size=1)
pool.warm()
print(next(w for ws in pool._idle.values() for w in ws).proc.pid, flush=True)
import sys
sys.stdin.read()
"""


def test_nothing_outlives_a_killed_agent():
    """SIGKILL the owning process: its bwrap worker and everything in the namespace go with it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        pid = int(proc.stdout.readline().strip())
        tree = _tree(pid)
        assert len(tree) >= 2 and all(_alive(p) for p in tree), "bwrap and its worker"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in tree), "the bwrap worker outlived its owner"


def test_close_kills_idle_workers(pool):
    result = _render(pool, PLOT)
    pool.close()
    deadline = time.monotonic() + 5
    while _alive(_pid(result)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(_pid(result))
    assert _render(pool, PLOT).status == "ok", "a closed pool starts afresh"
