"""Sandbox fixtures: the real Docker sandbox (session-wide) and the process sandbox."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator

import pytest

from support.paths import require


@pytest.fixture(scope="session")
def docker_client():
    """A docker SDK client whose engine answers; skips locally, fails under CI=true."""
    from coco_agent.sandbox import SandboxUnavailable
    from coco_agent.sandbox.image import docker_client as connect

    try:
        return connect()
    except SandboxUnavailable as exc:
        require(False, str(exc))


@pytest.fixture(scope="session")
def docker_image(docker_client) -> str:
    """The current sandbox image tag (built here when missing: minutes, once)."""
    from coco_agent.sandbox import SandboxUnavailable
    from coco_agent.sandbox.image import build_image

    try:
        return build_image(progress=lambda msg: print(f"sandbox image: {msg}"), client=docker_client)
    except SandboxUnavailable as exc:
        require(False, f"cannot build the sandbox image: {exc}")


@pytest.fixture(scope="session")
def docker_sandbox(docker_client, docker_image):
    """The default Docker sandbox: the warm container pool."""
    from coco_agent.sandbox.launchers import DockerLauncher
    from coco_agent.sandbox.pool import WarmPool

    sandbox = WarmPool(DockerLauncher(client=docker_client, image=docker_image))
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def docker_oneshot_sandbox(docker_client, docker_image):
    """The per-job Docker sandbox: one fresh container per render (the pool's fallback)."""
    from coco_agent.sandbox.launchers import DockerLauncher
    from coco_agent.sandbox.pool import WarmPool

    sandbox = WarmPool(DockerLauncher(client=docker_client, image=docker_image), pool_size=0, max_jobs=1)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def process_sandbox():
    """The plain subprocess sandbox (no bubblewrap), the weakest fallback."""
    from coco_agent.sandbox.backends import process

    return process(print)


@pytest.fixture(scope="session")
def gvisor_sandbox(docker_client, docker_image):
    """The warm container pool under gVisor (Docker's runsc runtime); skips locally, fails under CI=true."""
    from coco_agent.sandbox import SandboxUnavailable
    from coco_agent.sandbox.launchers import GvisorLauncher
    from coco_agent.sandbox.pool import WarmPool

    try:
        launcher = GvisorLauncher(client=docker_client, image=docker_image)
    except SandboxUnavailable as exc:
        require(False, str(exc))
    sandbox = WarmPool(launcher)
    yield sandbox
    sandbox.close()


# ------------------------------------------------------------- pools that keep one worker (jobs share it)


@pytest.fixture(scope="module")
def one_container(docker_client, docker_image) -> Iterator:
    """A Docker pool that may hold one container at a time: consecutive jobs share it."""
    from coco_agent.sandbox.launchers import DockerLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(DockerLauncher(client=docker_client, image=docker_image), pool_size=1, max_workers=1)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def one_gvisor_container(docker_client, docker_image) -> Iterator:
    """A gVisor pool that may hold one container at a time: consecutive jobs share it."""
    from coco_agent.sandbox import SandboxUnavailable
    from coco_agent.sandbox.launchers import GvisorLauncher
    from coco_agent.sandbox.pool import WarmPool
    from support.paths import require

    try:
        launcher = GvisorLauncher(client=docker_client, image=docker_image)
    except SandboxUnavailable as exc:
        require(False, str(exc))
    pool = WarmPool(launcher, pool_size=1, max_workers=1)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def one_bwrap_worker() -> Iterator:
    """Warm bubblewrap workers, at most one alive: consecutive jobs share it."""
    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (optional)")
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(BwrapLauncher(), pool_size=1, max_workers=1)
    yield pool
    pool.close()


@pytest.fixture
def listener() -> Iterator[tuple[int, list]]:
    """A TCP listener on the host's 127.0.0.1: (port, connections accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    accepted: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn.getpeername())
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        server.close()
