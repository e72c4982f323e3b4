"""The warm container pool: reuse, recycling, no job-to-job poisoning, threads, reaping after a SIGKILL.

Uses its own small pool (one container at a time) so consecutive jobs provably share a container.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from dataclasses import replace

import pytest

from coco_agent.sandbox import SandboxLimits
from coco_agent.sandbox.launchers.docker import LABEL, OWNER_LABEL, reap

pytestmark = pytest.mark.docker

LIMITS = SandboxLimits(timeout_s=10)
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\n"


@pytest.fixture(scope="module")
def pool(docker_client, docker_image):
    """A pool of at most one container, so that consecutive jobs land in the same one."""
    from coco_agent.sandbox.launchers import DockerLauncher
    from coco_agent.sandbox.pool import WarmPool

    sandbox = WarmPool(DockerLauncher(client=docker_client, image=docker_image), pool_size=1, max_workers=1)
    yield sandbox
    sandbox.close()


def _render(pool, code: str, limits: SandboxLimits = LIMITS):
    return pool.render(textwrap.dedent(code), "matplotlib", limits)


def _info(result) -> dict:
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; status={result.status} error={result.error[-800:]}"
    return json.loads(lines[-1])


def test_jobs_reuse_a_warm_container(pool):
    assert pool.warm() == 1
    first, second = _render(pool, PLOT), _render(pool, PLOT)
    assert first.status == second.status == "ok", (first.error, second.error)
    assert first.extra["container"] == second.extra["container"]
    assert second.extra["pool_job"] == first.extra["pool_job"] + 1


def test_pool_container_is_hardened(pool, docker_client):
    _render(pool, PLOT)
    cid = next(slot.cid for group in pool._idle.values() for slot in group)
    attrs = docker_client.api.inspect_container(cid)
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == host["MemorySwap"] == LIMITS.memory_mb << 20
    assert not host.get("Binds") and not host.get("Privileged")
    assert config["User"] == "10001:10001" and config["Labels"][LABEL] == "1"
    assert config["Labels"][OWNER_LABEL] == pool.launcher.owner


POISON = """
    import builtins, json, os, sys
    import matplotlib.figure, matplotlib.pyplot as plt
    for path in ["/tmp/{t}.py", "/tmp/{t}-dir/x", "/dev/shm/{t}", "/tmp/jobs/{t}", "/tmp/.cache/{t}",
                 "/tmp/mplconfig/matplotlibrc", "/tmp/mplconfig/stylelib/classic.mplstyle"]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("lines.linewidth: 50\\n")
    for name in os.listdir("/tmp/mplconfig"):
        if name.startswith("fontlist"):
            open(os.path.join("/tmp/mplconfig", name), "w").write("{{}}")
    os.makedirs("locked/inner")
    open("locked/inner/f", "w").close()
    os.chmod("locked/inner", 0)
    os.chmod("locked", 0)
    os.makedirs("/tmp/{t}-locked/inner")
    os.chmod("/tmp/{t}-locked", 0)
    os.chmod("/tmp/jobs", 0)
    os.chmod("/tmp/mplconfig", 0)
    matplotlib.figure.Figure.savefig = lambda *a, **k: None
    plt.plot = lambda *a, **k: None
    builtins.print = lambda *a, **k: None
    json.dumps = lambda *a, **k: "poisoned"
    os.environ["MPLBACKEND"] = "pdf"
    sys.modules["numpy"] = None
    sys.stdout.write("planted\\n")
"""

CHECK = """
    import hashlib, json, os

    def digest(folder):
        out = {}
        for root, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
        return out

    import numpy, matplotlib.figure
    print(json.dumps({
        "tmp": sorted(os.listdir("/tmp")),
        "jobs": len(os.listdir("/tmp/jobs")),
        "shm": os.listdir("/dev/shm"),
        "mplconfig_intact": digest("/tmp/mplconfig") == digest("/opt/coco/mplconfig"),
        "patched": matplotlib.figure.Figure.savefig.__name__ == "<lambda>",
        "backend": os.environ.get("MPLBACKEND"),
    }))
"""


def test_next_job_in_the_same_container_is_not_poisoned(pool):
    """Files in /tmp, /dev/shm, the job root and the font cache, chmod 000 folders, patched modules: all gone."""
    token = f"cocopool{uuid.uuid4().hex[:8]}"
    first = _render(pool, POISON.format(t=token))
    assert first.stdout.strip() == "planted", (first.status, first.error)
    second = _render(pool, textwrap.dedent(CHECK) + PLOT)
    assert second.status == "ok", second.error
    assert second.extra["container"] == first.extra["container"], "the poisoned container was not reused"
    assert _info(second) == {
        "tmp": ["jobs", "mplconfig"],
        "jobs": 1,
        "shm": [],
        "mplconfig_intact": True,
        "patched": False,
        "backend": "Agg",
    }


def test_leftover_ipc_recycles_the_container(pool):
    """System V IPC is refused at creation (the job's seccomp filter); a POSIX message queue made through the
    /dev/mqueue file system outlives its process: the container is not reused."""
    code = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0, 4096, 0o1600), ctypes.get_errno())
        open("/dev/mqueue/left-behind", "w").close()
    """
    first = _render(pool, code)
    assert first.stdout.split() == ["-1", "1"], first.stdout  # EPERM
    assert "message queues" in first.extra["recycled"], (first.status, first.error, first.extra)
    second = _render(pool, PLOT)
    assert second.status == "ok" and second.extra["container"] != first.extra["container"]


def test_too_deep_to_wipe_recycles_the_container(pool):
    """Folders nested deeper than the worker's wipe can follow: reported unclean, the container replaced."""
    code = """
        import os
        os.chdir("/tmp")
        for _ in range(1500):
            os.mkdir("d")
            os.chdir("d")
        print("deep")
    """
    first = _render(pool, code)
    assert first.stdout.strip() == "deep", (first.status, first.error)
    assert "wipe" in first.extra["recycled"]
    second = _render(pool, PLOT)
    assert second.status == "ok" and second.extra["container"] != first.extra["container"]


@pytest.mark.parametrize(
    ("code", "limits"),
    [
        ("while True:\n    pass\n", replace(LIMITS, timeout_s=1)),
        ("keep = []\nwhile True:\n    keep.append(b'x' * (32 << 20))\n", replace(LIMITS, memory_mb=256)),
    ],
    ids=["timeout", "oom"],
)
def test_failure_recycles_the_container(pool, code: str, limits: SandboxLimits):
    first = _render(pool, code, limits)
    assert first.status in {"timeout", "oom"}, (first.status, first.error)
    assert first.extra["recycled"] == first.status
    second = _render(pool, PLOT, limits)
    assert second.status == "ok" and second.extra["container"] != first.extra["container"]


def test_recycled_after_max_jobs(docker_client, docker_image):
    from coco_agent.sandbox.launchers import DockerLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(DockerLauncher(client=docker_client, image=docker_image), max_workers=1, max_jobs=2)
    try:
        results = [_render(pool, PLOT) for _ in range(3)]
    finally:
        pool.close()
    assert [r.status for r in results] == ["ok"] * 3
    assert results[0].extra["container"] == results[1].extra["container"] != results[2].extra["container"]
    assert results[1].extra["recycled"] == "ok"


def test_many_threads_share_one_pool(docker_client, docker_image):
    """Eight renders from four threads over two containers: each gets its own answer, none is lost."""
    from coco_agent.sandbox.launchers import DockerLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(DockerLauncher(client=docker_client, image=docker_image), max_workers=2)
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
    finally:
        pool.close()
    assert sorted(results) == list(range(8))
    for i, result in results.items():
        assert result.status == "ok", result.error
        assert result.stdout.strip() == str(i)
    assert len({r.extra["container"] for r in results.values()}) <= 2


AGENT = """
import sys
from coco_agent.sandbox.image import docker_client
from coco_agent.sandbox.launchers import DockerLauncher
from coco_agent.sandbox.pool import WarmPool
pool = WarmPool(DockerLauncher(client=docker_client(), image=sys.argv[1]), pool_size=1)
pool.warm()
print(next(s.cid for g in pool._idle.values() for s in g), flush=True)
sys.stdin.read()
"""


def test_pool_containers_reaped_after_the_agent_is_killed(docker_client, docker_image):
    """SIGKILL the owning process: its warm container is left behind, and the next start-up removes it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT, docker_image], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        cid = proc.stdout.readline().strip()
        assert cid, "the agent did not start a container"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    left = {c.id for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL}=1"})}
    assert cid in left, "nothing removes the container of a SIGKILLed owner before the next start-up"
    reap(docker_client)
    left = {c.id for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL}=1"})}
    assert cid not in left


def test_idle_container_removed_behind_the_pools_back(pool, docker_client):
    """An idle container that died (removed, killed) is noticed by a ping and replaced; the job still runs."""
    first = _render(pool, PLOT)
    docker_client.api.remove_container(next(s.cid for g in pool._idle.values() for s in g), force=True)
    second = _render(pool, PLOT)
    assert second.status == "ok", second.error
    assert second.extra["container"] != first.extra["container"]


def test_close_removes_pool_containers(pool, docker_client):
    _render(pool, PLOT)
    pool.close()
    left = docker_client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={pool.launcher.owner}"})
    assert left == []
