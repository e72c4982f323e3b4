"""The real Docker sandbox: real-world programs render, and each escape attempt ends safely.

Needs the Docker engine and the sandbox image (built by the fixture when missing). Skips locally without
Docker; fails under CI=true. No test sends traffic off this machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import pytest
from support.paths import CHARTMIMIC

from coco_agent.sandbox import SandboxLimits, decode_png
from coco_agent.sandbox.launchers.docker import LABEL, OWNER_LABEL, owner_id, reap

pytestmark = pytest.mark.docker

FAST = SandboxLimits(timeout_s=10)


def _one_per_chart_type() -> list[Path]:
    """The first ChartMimic program of each chart type (22 types: bar, 3d, graph, tree, violin, ...)."""
    picked: dict[str, Path] = {}
    for path in sorted(CHARTMIMIC.glob("*.py")):
        picked.setdefault(path.stem.rsplit("_", 1)[0], path)
    return list(picked.values())


CHARTS = _one_per_chart_type() if CHARTMIMIC.is_dir() else []


def _json_line(result) -> dict:
    """The last stdout line of a job that printed JSON."""
    assert result.stdout.strip(), f"no output; status={result.status} error={result.error}"
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- it renders


def test_chartmimic_corpus_present():
    assert len(CHARTS) >= 20, f"expected the ChartMimic programs in {CHARTMIMIC}"


@pytest.mark.parametrize("path", CHARTS, ids=lambda p: p.stem)
def test_chartmimic_program_renders(docker_sandbox, path: Path):
    """Each saves a PDF under a relative name; the sandbox must still return a PNG."""
    result = docker_sandbox.render(
        path.read_text(encoding="utf-8"), "matplotlib", SandboxLimits(timeout_s=60)
    )
    assert result.status == "ok", result.error
    assert result.sandbox == "docker"
    image = decode_png(result.png, max_pixels=40_000_000, max_bytes=32 << 20)
    assert image.size == (result.width, result.height)
    assert min(image.size) > 100
    assert image.convert("L").getextrema()[0] < 200, "the chart looks blank"


@pytest.mark.parametrize(
    "code",
    [
        "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2])\nplt.show()\n",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\nax.plot([1, 3, 2])\n",
        "import os\nimport matplotlib.pyplot as plt\nos.makedirs('out')\nplt.plot([1, 2])\n"
        "plt.savefig('out/chart.svg')\n",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('chart', format='pdf')\n",
    ],
    ids=["show", "saves-nothing", "saves-svg", "saves-pdf-no-suffix"],
)
def test_matplotlib_without_png_still_yields_png(docker_sandbox, code: str):
    result = docker_sandbox.render(code, "matplotlib", FAST)
    assert result.status == "ok", result.error
    assert result.png.startswith(b"\x89PNG")


def test_pil_renders(docker_sandbox):
    code = (
        "from PIL import Image, ImageDraw\n"
        "img = Image.new('RGB', (320, 200), 'white')\n"
        "ImageDraw.Draw(img).rectangle([10, 10, 100, 100], fill='blue')\n"
    )
    result = docker_sandbox.render(code, "pil", FAST)
    assert result.status == "ok", result.error
    assert (result.width, result.height) == (320, 200)


def test_svg_renders(docker_sandbox):
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="120">'
        '<rect width="240" height="120" fill="#3366cc"/><text x="10" y="60">Sales 销售</text></svg>'
    )
    result = docker_sandbox.render(svg, "svg", FAST)
    assert result.status == "ok", result.error
    assert (result.width, result.height) == (240, 120)


def test_svg_external_entities_and_files_not_read(docker_sandbox):
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><text y="20">&x;</text></svg>'
    )
    href = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="50" '
        'height="50"><image xlink:href="file:///etc/passwd" width="50" height="50"/></svg>'
    )
    for svg in (xxe, href):
        result = docker_sandbox.render(svg, "svg", FAST)
        assert "root:x:0" not in result.error + result.stdout + result.stderr
        assert result.status in {"ok", "error"}


# ---------------------------------------------------------------- limits


def test_infinite_loop_times_out(docker_sandbox):
    started = time.monotonic()
    result = docker_sandbox.render("while True:\n    pass\n", "matplotlib", SandboxLimits(timeout_s=2))
    assert result.status == "timeout", result.error
    assert time.monotonic() - started < 12


def test_memory_bomb_is_stopped(docker_sandbox):
    code = "chunks = []\nwhile True:\n    chunks.append(b'x' * (32 << 20))\n"
    result = docker_sandbox.render(code, "matplotlib", SandboxLimits(timeout_s=20, memory_mb=256))
    assert result.status == "oom", (result.status, result.error)


def test_fork_bomb_is_contained(docker_sandbox):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    started = time.monotonic()
    result = docker_sandbox.render(code, "matplotlib", SandboxLimits(timeout_s=3, pids=32))
    assert result.status in {"timeout", "error"}, result.error
    assert time.monotonic() - started < 15
    after = docker_sandbox.render("import matplotlib.pyplot as plt\nplt.plot([1, 2])\n", "matplotlib", FAST)
    assert after.status == "ok", after.error


def test_output_flood_is_capped(docker_sandbox):
    code = "import sys\nfor _ in range(500):\n    sys.stdout.write('x' * 100_000)\nprint('END')\n"
    limits = SandboxLimits(timeout_s=20, output_bytes=8192)
    result = docker_sandbox.render(code, "matplotlib", limits)
    assert result.status == "no_image"
    assert len(result.stdout) < 8192 + 200
    assert "bytes dropped" in result.stdout and result.stdout.rstrip().endswith("END")


def test_printed_frames_are_data_not_protocol(docker_sandbox):
    fake = json.dumps({"type": "result", "status": "ok", "payload_len": 0}).encode()
    code = (
        f"import sys\nsys.stdout.buffer.write({struct.pack('>I', len(fake)) + fake!r})\nsys.stdout.flush()\n"
    )
    result = docker_sandbox.render(code, "matplotlib", FAST)
    assert result.status == "no_image"


def test_giant_figure_rejected(docker_sandbox):
    code = "import matplotlib.pyplot as plt\nplt.figure(figsize=(800, 800))\nplt.plot([1, 2])\nplt.savefig('a.png')\n"
    result = docker_sandbox.render(code, "matplotlib", FAST)
    assert result.status == "rejected", result.error
    assert "pixel cap" in result.error


def test_program_error_returns_traceback(docker_sandbox):
    result = docker_sandbox.render(
        "import matplotlib.pyplot as plt\nplt.plot(undefined_name)\n", "matplotlib", FAST
    )
    assert result.status == "error"
    assert 'File "program.py", line 2' in result.error and "NameError" in result.error


# ---------------------------------------------------------------- isolation


def test_a_browser_container_gets_the_cpus_its_format_needs(docker_sandbox):
    """Chromium's processes work in parallel: an HTML worker's container gets 2 CPUs (at most the host's), the
    others the run's own; a run that asks for more keeps it."""
    import os

    key = docker_sandbox.launcher.key
    assert key(SandboxLimits(), "html")[2] == min(2.0, float(os.cpu_count() or 1))
    assert key(SandboxLimits(), "matplotlib")[2] == 1.0
    assert key(SandboxLimits(cpus=0.5), "svg")[2] == 0.5
    assert key(SandboxLimits(cpus=3.0), "html")[2] == 3.0


def test_container_is_hardened(docker_sandbox, docker_client):
    """Inspect a job container as created: the settings DESIGN.md promises."""
    limits = SandboxLimits(memory_mb=300, pids=40, cpus=0.5)
    cid = docker_sandbox.launcher._create(limits, ["--oneshot"])
    try:
        attrs = docker_client.api.inspect_container(cid)
    finally:
        docker_client.api.remove_container(cid, force=True)
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == host["MemorySwap"] == 300 << 20
    assert host["PidsLimit"] == 40 and host["NanoCpus"] == 500_000_000
    assert not host.get("Binds") and not attrs.get("Mounts") and not host.get("Privileged")
    assert config["User"] == "10001:10001"
    assert config["Labels"][LABEL] == "1"
    assert {e.split("=", 1)[0] for e in config["Env"]} <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "MPLCONFIGDIR",
        "XDG_CACHE_HOME",
    }


def test_job_runs_unprivileged(docker_sandbox):
    code = (
        "import json, os\nstatus = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
        "writable = []\nfor p in ('/etc/probe', '/opt/coco/worker/__main__.py', '/opt/coco/worker/probe', '/usr/probe'):\n"
        "    try:\n        open(p, 'a').close(); writable.append(p)\n    except OSError:\n        pass\n"
        "print(json.dumps({'uid': os.getuid(), 'cap': status['CapEff'].strip(), 'nnp': status['NoNewPrivs'].strip(),"
        " 'writable': writable}))\n"
    )
    info = _json_line(docker_sandbox.render(code, "matplotlib", FAST))
    assert info["uid"] != 0
    assert int(info["cap"], 16) == 0
    assert info["nnp"] == "1"
    assert info["writable"] == []


def test_network_unreachable(docker_sandbox):
    """Only loopback inside; no routes; a listener on the host's 127.0.0.1 cannot be reached."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = (
        "import json, socket\nout = {'ifaces': sorted(n for _, n in socket.if_nameindex())}\n"
        "out['routes'] = [l for l in open('/proc/net/route').read().splitlines()[1:] if l.strip()]\n"
        "s = socket.socket()\ns.settimeout(3)\n"
        f"try:\n    s.connect(('127.0.0.1', {port}))\n    out['connect'] = 'connected'\n"
        "except OSError as exc:\n    out['connect'] = type(exc).__name__\nprint(json.dumps(out))\n"
    )
    try:
        info = _json_line(docker_sandbox.render(code, "matplotlib", FAST))
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert info["ifaces"] == ["lo"]
    assert info["routes"] == []
    assert info["connect"] == "ConnectionRefusedError"
    assert accepted == []


def test_host_files_invisible(docker_sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret-" + uuid.uuid4().hex)
    here = str(Path(__file__).resolve())
    code = (
        "import json, os\nout = {}\n"
        f"for p in ({str(secret)!r}, {here!r}, '/var/run/docker.sock', '/work'):\n"
        "    out[p] = os.path.exists(p)\n"
        "out['hostname'] = open('/etc/hostname').read().strip()\nprint(json.dumps(out))\n"
    )
    info = _json_line(docker_sandbox.render(code, "matplotlib", FAST))
    assert not any(v for k, v in info.items() if k != "hostname"), info
    assert info["hostname"] == "sandbox" != socket.gethostname()


def test_host_env_invisible(docker_sandbox, monkeypatch):
    value = "hunter2-" + uuid.uuid4().hex
    monkeypatch.setenv("COCO_TEST_SECRET", value)
    code = (
        "import json, os\ntry:\n    environ1 = open('/proc/1/environ', 'rb').read().decode()\n"
        "except OSError as exc:\n    environ1 = type(exc).__name__\n"
        "print(json.dumps({'env': dict(os.environ), 'environ1': environ1}))\n"
    )
    result = docker_sandbox.render(code, "matplotlib", FAST)
    info = _json_line(result)
    assert "COCO_TEST_SECRET" not in info["env"]
    assert value not in result.stdout
    assert set(info["env"]) <= {
        *("PATH", "HOME", "TMPDIR", "LANG", "MPLCONFIGDIR", "XDG_CACHE_HOME", "HOSTNAME", "MPLBACKEND"),
        *("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"),
        "PYTHONDONTWRITEBYTECODE",
    }, sorted(info["env"])


def test_worker_fds_unreachable(docker_sandbox):
    """The worker is undumpable: a job cannot open its protocol fds through /proc."""
    code = (
        "import os\nfor fd in os.listdir('/proc/1/fd') if os.access('/proc/1/fd', os.R_OK) else []:\n"
        "    print('READ', fd)\ntry:\n    open('/proc/1/fd/0')\n    print('OPENED')\nexcept OSError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    result = docker_sandbox.render(code, "matplotlib", FAST)
    assert "OPENED" not in result.stdout and "READ" not in result.stdout
    assert "PermissionError" in result.stdout


def test_per_job_container_path(docker_oneshot_sandbox):
    """The fallback (COCO_SANDBOX_POOL=0): a fresh container per job renders, and times out from outside."""
    ok = docker_oneshot_sandbox.render(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n", "matplotlib", FAST
    )
    assert ok.status == "ok" and ok.png.startswith(b"\x89PNG"), ok.error
    loop = docker_oneshot_sandbox.render("while True:\n    pass\n", "matplotlib", SandboxLimits(timeout_s=1))
    assert loop.status == "timeout", loop.error
    assert ok.extra["container"] != loop.extra.get("container")


# ---------------------------------------------------------------- cleanup (keep last)


def test_reap_removes_orphans_only(docker_sandbox, docker_client):
    """A container whose owner process is gone is reaped; one owned by a live process is kept."""
    host = socket.gethostname()
    orphan = docker_client.containers.create(
        docker_sandbox.launcher.image,
        ["true"],
        network_mode="none",
        labels={LABEL: "1", OWNER_LABEL: f"{host}:999999999:1"},
    )
    mine = docker_client.containers.create(
        docker_sandbox.launcher.image,
        ["sleep", "60"],
        network_mode="none",
        labels={LABEL: "1", OWNER_LABEL: owner_id()},
    )
    try:
        mine.start()
        assert reap(docker_client) >= 1
        ids = {c.id for c in docker_client.containers.list(all=True, filters={"label": LABEL})}
        assert orphan.id not in ids and mine.id in ids
    finally:
        mine.remove(force=True)
        with contextlib.suppress(Exception):
            orphan.remove(force=True)


def test_no_leftover_containers(docker_sandbox, docker_client):
    docker_sandbox.close()
    left = docker_client.containers.list(
        all=True, filters={"label": f"{OWNER_LABEL}={docker_sandbox.launcher.owner}"}
    )
    assert left == []
    assert all(
        c.labels.get(LABEL) == "1" for c in docker_client.containers.list(all=True, filters={"label": LABEL})
    )
