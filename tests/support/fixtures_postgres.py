"""A real Postgres for the tests: Debian's server binaries, a cluster made with initdb in a temp dir, listening
on 127.0.0.1 only, started by the fixture and stopped (pg_ctl -m immediate) when the session ends.

``postgres_server`` has ``.url`` (a database of its own for the test session), ``.stop()`` and ``.start()``
(a Postgres that goes away mid-batch). As root the server runs as the ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.paths import require


def server_bin() -> Path | None:
    """The folder of Debian's initdb/pg_ctl (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    data: Path
    port: int
    user: str | None  # run as this user (root cannot run the server)

    @property
    def url(self) -> str:
        return f"postgresql://coco@127.0.0.1:{self.port}/coco"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)

    def init(self) -> None:
        self._run(self.bindir / "initdb", "-D", self.data, "-U", "coco", "--auth=trust", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.data}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )

    def start(self) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.data / "log.txt", "-w", "start")

    def stop(self) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_db(self) -> None:
        self._run(self.bindir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "coco", "coco")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = server_bin()
    require(bindir is not None, "Postgres server binaries (Debian package postgresql) are not installed")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
            user = "postgres"
        except KeyError:
            require(False, "running as root needs the 'postgres' user (made by the postgresql package)")
    root = Path(tempfile.mkdtemp(prefix="coco-pg-"))
    data = root / "data"
    data.mkdir()
    if user:
        info = pwd.getpwnam(user)
        for path in (root, data):
            os.chown(path, info.pw_uid, info.pw_gid)
    server = PostgresServer(bindir, data, free_port(), user)
    server.init()
    server.start()
    server.create_db()
    try:
        yield server
    finally:
        if server.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                server.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_until(check, timeout: float = 30.0, what: str = "condition") -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
