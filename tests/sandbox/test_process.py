"""The process sandbox (fallback without Docker): renders, times out, scrubs the environment."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import pytest

from coco_agent.formats import guess as guess_format
from coco_agent.sandbox import SandboxLimits, SandboxUnavailable
from coco_agent.sandbox.backends import BACKENDS, KINDS, make
from coco_agent.sandbox.launchers import BwrapLauncher
from coco_agent.sandbox.pool import WarmPool

BARS = "import matplotlib.pyplot as plt\nplt.bar(['Q1', 'Q2'], [100, 120])\nplt.savefig('sales.pdf')\n"


def test_renders_matplotlib(process_sandbox):
    result = process_sandbox.render(BARS, "matplotlib", SandboxLimits(timeout_s=30))
    assert result.status == "ok", result.error
    assert result.sandbox == "process"
    assert result.png.startswith(b"\x89PNG") and result.width > 100


def test_renders_pil(process_sandbox):
    code = "from PIL import Image\nimage = Image.new('RGB', (64, 48), 'green')\n"
    result = process_sandbox.render(code, "pil", SandboxLimits(timeout_s=30))
    assert result.status == "ok", result.error
    assert (result.width, result.height) == (64, 48)


def test_times_out(process_sandbox):
    started = time.monotonic()
    result = process_sandbox.render("while True:\n    pass\n", "matplotlib", SandboxLimits(timeout_s=1.5))
    assert result.status == "timeout"
    assert time.monotonic() - started < 10


def test_memory_limit(process_sandbox):
    code = "chunks = []\nwhile True:\n    chunks.append(b'x' * (32 << 20))\n"
    result = process_sandbox.render(code, "matplotlib", SandboxLimits(timeout_s=20, memory_mb=256))
    assert result.status == "oom", result.error


def test_error_and_no_image(process_sandbox):
    assert process_sandbox.render("1 / 0\n", "matplotlib").status == "error"
    assert process_sandbox.render("x = 1\n", "matplotlib").status == "no_image"


def test_environment_scrubbed(process_sandbox, monkeypatch):
    value = uuid.uuid4().hex
    monkeypatch.setenv("COCO_TEST_SECRET", value)
    result = process_sandbox.render("import json, os\nprint(json.dumps(dict(os.environ)))\n", "matplotlib")
    env = json.loads(result.stdout.strip().splitlines()[-1])
    assert "COCO_TEST_SECRET" not in env and value not in result.stdout


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed (optional)")
def test_bubblewrap_renders_without_network():
    sandbox = WarmPool(BwrapLauncher(), pool_size=0, max_jobs=1)
    assert sandbox.kind == "bubblewrap"
    assert sandbox.render(BARS, "matplotlib", SandboxLimits(timeout_s=30)).status == "ok"
    code = "import json, socket\nprint(json.dumps(sorted(n for _, n in socket.if_nameindex())))\n"
    result = sandbox.render(code, "matplotlib")
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["lo"]


@pytest.mark.parametrize(
    ("code", "name", "expected"),
    [
        ("<svg xmlns='http://www.w3.org/2000/svg'/>", "a.txt", "svg"),
        ("<?xml version='1.0'?><svg/>", "", "svg"),
        ("print('hi')", "drawing.svg", "svg"),
        ("from PIL import Image\nimg = Image.new('RGB', (4, 4))", "", "pil"),
        ("from PIL import Image\nimport matplotlib.pyplot as plt", "", "matplotlib"),
        ("import numpy as np", "x.py", "matplotlib"),
    ],
)
def test_guess_format(code, name, expected):
    assert guess_format(code, name) == expected


def test_docker_unavailable_names_the_fix(monkeypatch):
    """kind docker without an engine raises with the fix; auto falls back with a warning."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailable, match=r"docker\.io.*--sandbox process"):
        make("docker", print)
    said: list[str] = []
    fallback = make("auto", said.append)
    try:
        assert fallback.kind == ("bubblewrap" if shutil.which("bwrap") else "process")
        assert said and "weaker" in said[0]
    finally:
        fallback.close()


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed (optional)")
@pytest.mark.parametrize(("pool", "max_jobs"), [(None, 200), ("0", 1)])
def test_bubblewrap_is_warm_unless_pool_is_0(monkeypatch, pool: str | None, max_jobs: int):
    if pool is None:
        monkeypatch.delenv("COCO_SANDBOX_POOL", raising=False)
    else:
        monkeypatch.setenv("COCO_SANDBOX_POOL", pool)
    sandbox = make("bubblewrap", print)
    try:
        assert isinstance(sandbox, WarmPool) and sandbox.kind == "bubblewrap" and sandbox.max_jobs == max_jobs
    finally:
        sandbox.close()


def test_auto_without_docker_or_working_bubblewrap_uses_process(monkeypatch, tmp_path):
    """A `bwrap` that cannot start the worker (here: one that always fails): auto falls back to process."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    said: list[str] = []
    sandbox = make("auto", said.append)
    assert sandbox.kind == "process" and "cannot start" in said[0]
    assert sandbox.render("x = 1\n", "matplotlib").status == "no_image"


def test_backends_in_one_table():
    """Every --sandbox choice is a row of the table (plus auto), and each names a launcher of the same kind."""
    from coco_agent.sandbox.launchers import LAUNCHERS

    assert ("auto", *BACKENDS) == KINDS and set(BACKENDS) == set(LAUNCHERS)
    with pytest.raises(ValueError, match="choose one of auto, docker, gvisor, bubblewrap, process"):
        from coco_agent.sandbox import get_sandbox

        get_sandbox("gvisor-typo")
