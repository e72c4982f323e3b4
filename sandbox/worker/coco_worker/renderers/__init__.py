"""The worker's renderers, in one table. Adding a format = one module here + one line in RENDERERS.

A renderer module has:
  NAME        the format's name (the host's format registry has the same names: a test keeps them equal)
  FALLBACKS   what else to look for when the job's own kind of picture is missing: other names, or "file"
  preload(full_warm_up)          import (and warm up) in the zygote, before any fork
  Hooks(capture)                 per job: .install() before the program runs, .found(namespace, job_dir)
  document(source, max_pixels)   optional: render the job's text as a document of this format, or None
                                 when it is not one (then it runs as a Python program)
  restore_scratch()              optional: put back what it keeps in the scratch space after a wipe
"""

from __future__ import annotations

from types import ModuleType

from coco_worker.renderers import matplotlib, pil, svg

RENDERERS: dict[str, ModuleType] = {module.NAME: module for module in (matplotlib, pil, svg)}


def restore_scratch() -> None:
    """After a job's scratch space was wiped: what each renderer keeps there, back in place."""
    for module in RENDERERS.values():
        restore = getattr(module, "restore_scratch", None)
        if restore is not None:
            restore()
