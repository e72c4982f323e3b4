"""Graphviz: a DOT graph laid out and drawn by Debian's `dot` (cairo PNG), with every label's string, box and
font size from the same run's layout (-Tjson), in the PNG's pixels.

`dot` runs in the job's process group (the deadline and the leftover checks reach it) with an address-space
limit (a graph that makes it eat memory fails with its own error, and the container's memory cgroup stays
the last word), an empty environment but SERVER_NAME/GV_FILE_PATH (Graphviz's own rule: images only from a
folder that does not exist), and attributes that name files (image, imagepath, shapefile, fontpath,
stylesheet) refused before it runs: a draft is self-contained.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time

from coco_worker.capture import DocumentError
from coco_worker.pixels import Rejected, check_pixels
from coco_worker.protocol import MAX_TEXT_CHARS, MAX_TEXTS
from coco_worker.textboxes import png_dimensions

NAME = "graphviz"
FALLBACKS = ()
DOCUMENT_ONLY = True
_FILE_ATTRIBUTES = re.compile(r"\b(image|imagepath|shapefile|fontpath|stylesheet)\s*=", re.IGNORECASE)
_GRAPH = re.compile(r"^\s*(strict\s+)?(di)?graph\b", re.IGNORECASE)
MAX_LAYOUT_BYTES = 16 << 20
DOT_ENV = {
    "PATH": "/usr/bin:/bin",
    "SERVER_NAME": "coco-sandbox",
    "GV_FILE_PATH": "/nonexistent/",
    "LANG": "C.UTF-8",
}
PAD_PT = 4.0  # Graphviz's default pad around the drawing, in points
DEFAULT_DPI = 96.0


class Hooks:
    """DOT runs no Python program: nothing to hook."""

    def __init__(self, capture) -> None:
        self.capture = capture

    def install(self) -> None:
        """Nothing to hook."""

    def found(self, namespace: dict, job_dir: str):
        return None


def preload(full_warm_up: bool = True) -> None:
    """Check that `dot` is there (it starts afresh for each job: a few milliseconds)."""
    if not dot_path():
        raise RuntimeError("Graphviz is not installed here (apt-get install graphviz)")


def dot_path() -> str:
    return os.environ.get("COCO_DOT") or shutil.which("dot", path="/usr/bin:/bin") or ""


def _strip_comments(source: str) -> str:
    return re.sub(r"/\*.*?\*/|//[^\n]*|^#[^\n]*", " ", source, flags=re.S | re.M)


def document(source: str, limits: dict):
    """Lay out and draw the job's DOT graph; DocumentError with dot's own message when it is not one."""
    head = _strip_comments(source[:4096])
    if not _GRAPH.match(head):
        refused = DocumentError("the program is not a DOT graph: it must start with `digraph` or `graph`")
        refused.status = "no_image"
        raise refused
    found = _FILE_ATTRIBUTES.search(source)
    if found:
        raise DocumentError(
            f"the graph names a file ({found.group(1)}=...): drafts are self-contained, draw it with shapes"
        )
    dot = dot_path()
    if not dot:
        raise DocumentError("Graphviz is not installed in this sandbox")
    job_dir = os.getcwd()
    graph, png_path, layout_path = (
        os.path.join(job_dir, n) for n in ("graph.dot", "graph.png", "layout.json")
    )
    with open(graph, "w", encoding="utf-8") as f:
        f.write(source)
    max_pixels = int(limits.get("max_pixels", 40_000_000))
    memory = (max_pixels * 4 + (512 << 20)) if not limits.get("address_space_mb") else 0
    timeout = max(1.0, float(limits.get("timeout", 30.0)) - 0.5)

    def limit() -> None:  # in dot's process, before exec
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    started = time.monotonic()
    try:
        proc = subprocess.run(
            [dot, "-Tjson", "-o", layout_path, "-Tpng", "-o", png_path, graph],
            capture_output=True,
            env=DOT_ENV,
            timeout=timeout,
            preexec_fn=limit,
            cwd=job_dir,
        )
    except subprocess.TimeoutExpired:
        err = DocumentError(
            f"dot did not finish within {time.monotonic() - started:.0f} s (a graph too large to lay out)"
        )
        err.status = "timeout"
        raise err from None
    lines = proc.stderr.decode("utf-8", "replace").splitlines()
    message = "\n".join(line for line in lines if "No writable cache directories" not in line).strip()[-2000:]
    if proc.returncode != 0 or not os.path.isfile(png_path):
        if proc.returncode < 0 or "memory" in message.lower() or "alloc" in message.lower():
            err = DocumentError(f"dot ran out of memory or was killed ({proc.returncode}): {message}")
            err.status = "oom"
            raise err
        raise DocumentError(
            f"dot could not draw the graph (exit {proc.returncode}): {message or 'no message'}"
        )
    with open(png_path, "rb") as f:
        png = f.read(int(limits.get("max_png_bytes", 32 << 20)) + 1)
    size = png_dimensions(png)
    if size is None:
        raise DocumentError("dot wrote no PNG")
    check_pixels(size[0], size[1], max_pixels, "graph picture")
    if _empty(layout_path):
        refused = DocumentError("the graph is empty: it has no node, edge or label")
        refused.status = "no_image"
        raise refused
    texts = None
    try:
        texts = layout_texts(layout_path, size)
    except (OSError, ValueError, TypeError, KeyError, IndexError, RecursionError, Rejected):
        texts = None
    boxes = [t["box"] for t in texts] if texts is not None else None
    if message:  # dot's warnings: the job's stderr
        print(message, file=sys.stderr)
    return png, "dot", boxes, {"texts": texts}


def _empty(path: str) -> bool:
    try:
        if os.path.getsize(path) > MAX_LAYOUT_BYTES:
            return False
        with open(path, encoding="utf-8") as f:
            layout = json.load(f)
    except (OSError, ValueError, RecursionError):
        return False
    return not (layout.get("objects") or layout.get("edges") or layout.get("_ldraw_"))


def layout_texts(path: str, size: tuple[int, int]) -> list[dict] | None:
    """Every label dot drew (graph, cluster, node and edge labels) from its -Tjson layout, in PNG pixels."""
    if os.path.getsize(path) > MAX_LAYOUT_BYTES:
        return None
    with open(path, encoding="utf-8") as f:
        layout = json.load(f)
    x0, y0, x1, y1 = (float(v) for v in str(layout["bb"]).split(","))
    width_pt, height_pt = x1 - x0 + 2 * PAD_PT, y1 - y0 + 2 * PAD_PT
    sx, sy = size[0] / width_pt, size[1] / height_pt  # the dpi (and any size= scaling) dot drew at

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - x0 + PAD_PT) * sx, (y1 - y + PAD_PT) * sy

    texts: list[dict] = []
    items = [(layout, None)] + [(o, _node_box(o, px)) for o in layout.get("objects") or []]
    items += [(e, None) for e in layout.get("edges") or []]
    for item, container in items:
        for key in ("_ldraw_", "_hldraw_", "_tldraw_"):
            font = 14.0
            for op in item.get(key) or []:
                if op.get("op") == "F":
                    font = float(op.get("size", font))
                elif op.get("op") == "T" and str(op.get("text", "")).strip():
                    x, y = (float(v) for v in op["pt"])
                    w = float(op.get("width", 0))
                    left = {"l": x, "r": x - w}.get(op.get("align"), x - w / 2)
                    ax, ay = px(left, y + font * 0.8)
                    bx, by = px(left + w, y - font * 0.22)
                    texts.append(
                        {
                            "text": str(op["text"])[:MAX_TEXT_CHARS],
                            "box": [math.floor(ax), math.floor(ay), math.ceil(bx), math.ceil(by)],
                            "container": container,
                            "font_px": round(font * sy, 2),
                        }
                    )
                    if len(texts) > MAX_TEXTS:
                        return None
    return texts


def _node_box(node: dict, px) -> list[int] | None:
    """A node's box in pixels (its pos and size); None for clusters and anything without them."""
    if "pos" not in node or "width" not in node or "height" not in node:
        return None
    x, y = (float(v) for v in str(node["pos"]).split(",")[:2])
    half_w, half_h = float(node["width"]) * 36, float(node["height"]) * 36
    ax, ay = px(x - half_w, y + half_h)
    bx, by = px(x + half_w, y - half_h)
    return [math.floor(ax), math.floor(ay), math.ceil(bx), math.ceil(by)]
