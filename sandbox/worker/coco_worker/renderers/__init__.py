"""The worker's renderers, in one table. Adding a format = one module here + one line in RENDERERS.

A renderer module has:
  NAME        the format's name (the host's format registry has the same names: a test keeps them equal)
  FALLBACKS   what else to look for when the job's own kind of picture is missing: other names, or "file"
  preload(full_warm_up)          import (and warm up) in the zygote, before any fork
  Hooks(capture)                 per job: .install() before the program runs, .found(namespace, job_dir)
  document(source, limits)       optional: render the job's text as a document of this format, or None
                                 when it is not one (then it runs as a Python program); (png, how, boxes[,
                                 {"texts": [...]}]); raises capture.DocumentError for a clear refusal
  DOCUMENT_ONLY                  optional, True: never a Python program (html, graphviz, vega-lite)
  job_fds() / check()            optional: a warm service's pipes the job keeps / '' when the service is
                                 healthy after a job, else why (coco_worker/services.py)
  restore_scratch()              optional: put back what it keeps in the scratch space after a wipe
"""

from __future__ import annotations

from types import ModuleType

from coco_worker.renderers import graphviz, html, matplotlib, pil, svg, vegalite

RENDERERS: dict[str, ModuleType] = {
    module.NAME: module for module in (matplotlib, pil, svg, html, graphviz, vegalite)
}


def restore_scratch() -> None:
    """After a job's scratch space was wiped: what each renderer keeps there, back in place."""
    for module in RENDERERS.values():
        restore = getattr(module, "restore_scratch", None)
        if restore is not None:
            restore()
