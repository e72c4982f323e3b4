"""The worker bundle: sandbox/worker/ plus the shared protocol module, as one folder every sandbox runs.

`python3 -I -B <bundle>` runs it (its __main__.py; the folder is sys.path[0]). The Docker image carries it at
/opt/coco/worker; bubblewrap binds it there read-only; the process sandbox runs it in place. It is made once
per content hash under the user's cache folder (atomically: concurrent agents never see half a bundle).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from coco_agent.paths import shipped_dir
from coco_agent.sandbox import protocol

BUNDLE_PROTOCOL = "coco_worker/protocol.py"  # where the shared module sits in the bundle
IN_SANDBOX = "/opt/coco/worker"  # where the image and bubblewrap put the bundle


def bundle_files() -> dict[str, bytes]:
    """Every file of the bundle by its path inside it (posix, sorted): the worker package and the protocol."""
    root = shipped_dir("sandbox") / "worker"
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    files[BUNDLE_PROTOCOL] = Path(protocol.__file__).read_bytes()
    return dict(sorted(files.items()))


def bundle_digest(files: dict[str, bytes] | None = None) -> str:
    """12 hex digits naming this bundle's content."""
    digest = hashlib.sha256()
    for name, data in (files or bundle_files()).items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:12]


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coco-agent"


def worker_bundle() -> Path:
    """The bundle folder for the current sources (made on first use; files 0644, folders 0755)."""
    files = bundle_files()
    root = _cache_root()
    target = root / f"worker-{bundle_digest(files)}"
    if (target / "__main__.py").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".worker-", dir=root))
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o644)
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:  # another process made it first
            if not (target / "__main__.py").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
