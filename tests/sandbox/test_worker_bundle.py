"""The worker bundle: one protocol module shared by host and worker, the package importable under `python3 -I`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coco_agent import formats
from coco_agent.sandbox import base, protocol
from coco_agent.sandbox.bundle import BUNDLE_PROTOCOL, IN_SANDBOX, bundle_digest, bundle_files, worker_bundle

PROTOCOL_SOURCE = Path(protocol.__file__).read_bytes()
PRINT_TABLE = (
    "import sys; from coco_worker.renderers import RENDERERS; from coco_worker import protocol; "
    "print(','.join(RENDERERS)); print(protocol.__file__)"
)


def test_bundle_carries_the_hosts_protocol_module():
    files = bundle_files()
    assert files[BUNDLE_PROTOCOL] == PROTOCOL_SOURCE
    assert "__main__.py" in files and "coco_worker/main.py" in files
    assert not any("__pycache__" in name for name in files)
    bundle = worker_bundle()
    assert (bundle / BUNDLE_PROTOCOL).read_bytes() == PROTOCOL_SOURCE
    assert bundle.name == f"worker-{bundle_digest()}"
    assert worker_bundle() == bundle  # made once per content


def test_bundle_imports_its_own_modules_under_isolated_mode(tmp_path):
    """`python3 -I -B <bundle>`: isolated mode puts only the bundle folder on sys.path, and that is enough."""
    bundle = worker_bundle()
    run = subprocess.run(
        [sys.executable, "-I", "-B", str(bundle), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "coco sandbox worker" in run.stdout
    probe = subprocess.run(
        [sys.executable, "-I", "-B", "-c", f"import sys; sys.path.insert(0, {str(bundle)!r}); {PRINT_TABLE}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    names, where = probe.stdout.split()
    assert names == ",".join(formats.names()) and where.startswith(str(bundle))


def test_statuses_are_the_protocols():
    assert frozenset(protocol.STATUSES) == base.STATUSES
    assert protocol.HEALTHY <= base.STATUSES


@pytest.mark.docker
def test_image_carries_the_bundle_and_imports_it_isolated(docker_client, docker_image):
    """The image's copy of the protocol is the host's file byte for byte, and the image's Python imports the
    bundle's own modules under -I (the pool's command line)."""
    out = docker_client.containers.run(
        docker_image,
        ["sh", "-c", f"cat {IN_SANDBOX}/{BUNDLE_PROTOCOL}"],
        network_mode="none",
        remove=True,
    )
    assert out == PROTOCOL_SOURCE
    out = docker_client.containers.run(
        docker_image,
        ["python3", "-I", "-B", "-c", f"import sys; sys.path.insert(0, {IN_SANDBOX!r}); {PRINT_TABLE}"],
        network_mode="none",
        remove=True,
    )
    names, where = out.decode().split()
    assert names == ",".join(formats.names()) and where == f"{IN_SANDBOX}/{BUNDLE_PROTOCOL}"
    out = docker_client.containers.run(
        docker_image, ["python3", "-I", "-B", IN_SANDBOX, "--help"], network_mode="none", remove=True
    )
    assert b"coco sandbox worker" in out
