"""The sandbox image: tagged by a content hash of `sandbox/`, built from Debian packages with no registry.

Two steps, each cached by its own tag:
  base  coco-sandbox-base:<hash of build-rootfs.sh + packages.txt>  debootstrap rootfs -> `docker import`
  app   coco-sandbox:<hash of sandbox/ and the worker bundle>       base + the worker bundle, one layer
so editing the worker rebuilds in seconds, and a second build with nothing changed is a no-op.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from coco_agent.paths import shipped_dir
from coco_agent.sandbox.base import SandboxUnavailable
from coco_agent.sandbox.bundle import IN_SANDBOX, bundle_files

IMAGE_REPO = "coco-sandbox"
BASE_REPO = "coco-sandbox-base"
SANDBOX_UID = 10001
JOB_UID = 10002  # under gVisor each job runs as this user (build-rootfs.sh makes both)
WORKER_PATH = IN_SANDBOX  # the worker bundle (a folder: `python3 -I -B /opt/coco/worker`)
IMAGE_LABEL = "coco-agent.sandbox-image"
# The whole environment a sandboxed job sees (the worker adds the single-thread BLAS settings itself).
CONTAINER_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "MPLCONFIGDIR": "/opt/coco/mplconfig",
    "XDG_CACHE_HOME": "/tmp/.cache",
}
BASE_FILES = ("build-rootfs.sh", "packages.txt")
ENGINE_FIX = (
    "install Docker (apt-get install docker.io), start the engine (systemctl start docker, or run `dockerd &` "
    "as root), or use the weaker process sandbox (--sandbox process)"
)

Progress = Callable[[str], None]


def sandbox_dir() -> Path:
    """The `sandbox/` folder holding the worker and the image recipe."""
    return shipped_dir("sandbox")


def _digest(root: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _sandbox_files(root: Path) -> list[str]:
    files = []
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append(path.relative_to(root).as_posix())
    return files


_TAGS: dict[tuple, str] = {}  # the files' sizes and modification times -> the tag they hash to


def image_tag() -> str:
    """`coco-sandbox:<12 hex>`, a hash of every file in `sandbox/` and of the worker bundle (the protocol too).

    Hashed again only when a file's size or modification time changed since the last call (every run's result
    records the tag: reading and hashing the recipe each time cost 5 ms of a batch's per-prompt CPU)."""
    root = sandbox_dir()
    names = _sandbox_files(root)
    from coco_agent.sandbox import protocol

    paths = [root / name for name in sorted(names)] + [Path(protocol.__file__)]
    key = tuple((str(path), *_stamp(path)) for path in paths)
    tag = _TAGS.get(key)
    if tag is None:
        h = hashlib.sha256(_digest(root, names).encode())
        for name, data in bundle_files().items():
            h.update(name.encode() + b"\0" + data + b"\0")
        tag = f"{IMAGE_REPO}:{h.hexdigest()[:12]}"
        _TAGS.clear()
        _TAGS[key] = tag
    return tag


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def base_tag() -> str:
    """`coco-sandbox-base:<12 hex>`, a hash of the rootfs recipe only."""
    return f"{BASE_REPO}:{_digest(sandbox_dir(), list(BASE_FILES))}"


def docker_client(timeout: float = 60):
    """A docker SDK client whose engine answered a ping; SandboxUnavailable (cause and fix) otherwise."""
    try:
        import docker
    except ImportError as exc:
        raise SandboxUnavailable(
            "the docker Python SDK is missing: pip install docker (or pip install -e . in the checkout)"
        ) from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # DockerException, requests errors, PermissionError on the socket...
        raise SandboxUnavailable(f"cannot reach the Docker engine ({_short(exc)}): {ENGINE_FIX}") from exc
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _find_image(client, tag: str):
    import docker

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def image_status(client=None) -> dict:
    """What is there: engine reachable, runtime, image present (size, created), build prerequisites."""
    status: dict = {
        "engine": False,
        "engine_error": "",
        "image": image_tag(),
        "present": False,
        "base_image": base_tag(),
        "base_present": False,
        "debootstrap": shutil.which("debootstrap") or "",
        "root": os.geteuid() == 0,
    }
    try:
        client = client or docker_client(timeout=15)
    except SandboxUnavailable as exc:
        status["engine_error"] = str(exc)
        return status
    info = client.info()
    status.update(
        engine=True,
        server_version=client.version().get("Version", ""),
        runtime=info.get("DefaultRuntime", ""),
        cgroup_version=info.get("CgroupVersion", ""),
        security_options=info.get("SecurityOptions", []),
    )
    image = _find_image(client, status["image"])
    if image is not None:
        status.update(
            present=True, size_mb=round(image.attrs["Size"] / 1e6, 1), created=image.attrs["Created"]
        )
    status["base_present"] = _find_image(client, status["base_image"]) is not None
    return status


def build_image(progress: Progress | None = None, force: bool = False, client=None) -> str:
    """Build the sandbox image unless its tag exists (or `force`); return the tag.

    Cold: debootstrap + apt + docker import (a few minutes, needs root, debootstrap and Debian's mirror).
    Warm: a tag lookup. Errors are SandboxUnavailable naming the fix.
    """
    say = progress or (lambda _msg: None)
    client = client or docker_client(timeout=600)
    tag = image_tag()
    if not force and _find_image(client, tag) is not None:
        return tag
    started = time.monotonic()
    base = base_tag()
    if force or _find_image(client, base) is None:
        _build_base(client, base, say)
    say(f"adding the worker layer -> {tag}")
    _commit_worker(client, base, tag)
    say(f"sandbox image {tag} built in {time.monotonic() - started:.0f} s")
    return tag


def _build_base(client, tag: str, say: Progress) -> None:
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "building the sandbox image needs root (debootstrap and chroot): run `sudo coco sandbox build`"
        )
    if not shutil.which("debootstrap"):
        raise SandboxUnavailable("debootstrap is missing: apt-get install debootstrap")
    work = Path(tempfile.mkdtemp(prefix="coco-rootfs-", dir=os.environ.get("COCO_BUILD_DIR")))
    try:
        wheels = _download_wheels(work, say)
        rootfs = work / "rootfs"
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coco-agent" / "debs"
        cmd = ["sh", str(sandbox_dir() / "build-rootfs.sh"), str(rootfs), "--cache-dir", str(cache)]
        for wheel in wheels:
            cmd += ["--wheel", str(wheel)]
        if os.environ.get("COCO_DEBIAN_MIRROR"):
            cmd += ["--mirror", os.environ["COCO_DEBIAN_MIRROR"]]
        if os.environ.get("COCO_DEBIAN_SECURITY_MIRROR"):
            cmd += ["--security-mirror", os.environ["COCO_DEBIAN_SECURITY_MIRROR"]]
        _run_logged(cmd, work / "build.log", say)
        say("packing the root filesystem")
        archive = work / "rootfs.tar"
        _run_logged(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], work / "tar.log", say
        )
        say(f"docker import -> {tag}")
        repo, _, version = tag.partition(":")
        changes = [f"ENV {k}={v}" for k, v in CONTAINER_ENV.items()]
        changes += [f"USER {SANDBOX_UID}:{SANDBOX_UID}", "WORKDIR /tmp", f"LABEL {IMAGE_LABEL}=base"]
        client.api.import_image_from_file(str(archive), repository=repo, tag=version, changes=changes)
        if _find_image(client, tag) is None:
            raise SandboxUnavailable(
                f"docker import did not produce {tag}; see `docker images` and the engine log"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# Wheels Debian does not package, unpacked into the image's dist-packages: squarify (pure Python) and
# vl-convert-python (--format vega-lite: one abi3 extension that bundles Vega-Lite, Vega and V8).
WHEELS = {"squarify": "squarify-*.whl", "vl-convert-python": "vl_convert_python-*.whl"}


def _download_wheels(work: Path, say: Progress) -> list[Path]:
    say(f"pip download {', '.join(WHEELS)} (not packaged by Debian)")
    found = []
    for name, pattern in WHEELS.items():
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", "3.11", "-d", str(work / "wheels"), name]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted((work / "wheels").glob(pattern))
        if proc.returncode != 0 or not wheels:
            raise SandboxUnavailable(
                f"pip download {name} failed ({proc.stderr.strip()[-300:]}): the image build needs PyPI access"
            )
        found.append(wheels[-1])
    return found


def _run_logged(cmd: list[str], log: Path, say: Progress) -> None:
    """Run `cmd`, keep its output in `log`, pass its '== step' lines to `say`; raise with the tail on failure."""
    tail: list[str] = []
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            tail = (tail + [line.rstrip()])[-25:]
            if line.startswith("=="):
                say(line[2:].strip())
        rc = proc.wait()
    if rc != 0:
        kept = Path(tempfile.gettempdir()) / f"coco-sandbox-build-{int(time.time())}.log"
        shutil.copy(log, kept)
        raise SandboxUnavailable(
            f"{' '.join(cmd[:2])} failed with exit code {rc} (full log: {kept}):\n" + "\n".join(tail)
        )


def _commit_worker(client, base: str, tag: str) -> None:
    """Add the worker bundle to the base image as one committed layer (no registry, no build context)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folders = sorted({str(Path(name).parent) for name in bundle_files()} - {"."})
        for folder in ["worker", *(f"worker/{f}" for f in folders)]:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, data in bundle_files().items():
            info = tarfile.TarInfo(f"worker/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    container = client.containers.create(base, command=["true"], network_mode="none")
    try:
        container.put_archive(str(Path(WORKER_PATH).parent), buf.getvalue())
        repo, _, version = tag.partition(":")
        changes = [f"LABEL {IMAGE_LABEL}={version}", f'CMD ["python3", "-I", "-B", "{WORKER_PATH}"]']
        container.commit(repository=repo, tag=version, changes=changes)
    finally:
        container.remove(force=True)
