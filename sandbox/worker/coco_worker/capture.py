"""Capture: the picture a program drew, whatever way it chose to save (or not save) it.

Every renderer's hooks are installed in every job (a matplotlib job may draw with PIL); the job's format says in
which order their catches count. "file" is the newest image file the job wrote in its folder.
"""

from __future__ import annotations

import os
from types import ModuleType

from coco_worker.pixels import pil_to_png

PROGRAM_NAME = "program.py"  # the file name a job's program runs under (tracebacks, linecache)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
Found = tuple[bytes, str, list | None]  # (PNG, how it was found, text boxes or None when unknown)
# A renderer may add a fourth item: a dict of more result fields ("texts": the drawn strings).


class DocumentError(Exception):
    """A document renderer's clear refusal or failure (no traceback): status `status`, the message as the error."""

    status = "error"


class Capture:
    """One job's hooks over every renderer, and the answer to "what did it draw?"."""

    def __init__(self, fmt: str, max_pixels: int, renderers: dict[str, ModuleType]) -> None:
        self.fmt, self.max_pixels, self.renderers = fmt, max_pixels, renderers
        self.hooks = {name: module.Hooks(self) for name, module in renderers.items()}

    def install(self) -> None:
        """Install every renderer's hooks (a missing library only leaves its hooks out)."""
        for hooks in self.hooks.values():
            try:
                hooks.install()
            except ImportError:
                continue

    def result(self, namespace: dict, job_dir: str) -> Found | None:
        """The PNG to return, how it was found and where it shows text, in the order the job's format prefers."""
        for step in (self.fmt, *self.renderers[self.fmt].FALLBACKS):
            found = self.image_file(job_dir) if step == "file" else self.hooks[step].found(namespace, job_dir)
            if found:
                return found
        return None

    def image_file(self, job_dir: str) -> Found | None:
        """The newest image file the job wrote, as PNG (text boxes unknown)."""
        path = newest_file(job_dir, IMAGE_SUFFIXES)
        if not path:
            return None
        from PIL import Image

        with Image.open(path) as im:
            return pil_to_png(im, self.max_pixels), f"file:{os.path.basename(path)}", None


def name_of(target) -> str:
    """What a program saved to, for the record: a file's base name, else the target's type."""
    if isinstance(target, str | bytes | os.PathLike):
        return os.path.basename(os.fsdecode(target))
    return type(target).__name__


def newest_file(job_dir: str, suffixes: tuple[str, ...]) -> str | None:
    """The most recently written regular file (no links) under `job_dir` with one of `suffixes`."""
    best, best_mtime = None, -1.0
    for root, _dirs, files in os.walk(job_dir):
        for name in files:
            path = os.path.join(root, name)
            if name.lower().endswith(suffixes) and os.path.isfile(path) and not os.path.islink(path):
                mtime = os.stat(path).st_mtime
                if mtime >= best_mtime:
                    best, best_mtime = path, mtime
    return best
