"""Vega-Lite: a JSON spec rendered without a browser by vl-convert (its wheel bundles Vega-Lite, Vega and a
V8), kept warm in a service process (coco_worker/vega_service.py); the job's process sends the spec, gets the
PNG and the text marks back. A spec that names anything to load (a data URL that is not data:, an image
href) is refused with the name: a draft is self-contained (inline `values`).
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

from coco_worker import services
from coco_worker.capture import DocumentError
from coco_worker.protocol import FrameReader, write_frame
from coco_worker.textboxes import png_dimensions

NAME = "vega-lite"
FALLBACKS = ()
DOCUMENT_ONLY = True
MAX_SPEC_DEPTH = 64
FOLDER = "/tmp/.coco-vega"
PING_S = 3.0


class Hooks:
    """A Vega-Lite spec runs no Python program: nothing to hook."""

    def __init__(self, capture) -> None:
        self.capture = capture

    def install(self) -> None:
        """Nothing to hook."""

    def found(self, namespace: dict, job_dir: str):
        return None


def preload(full_warm_up: bool = True) -> None:
    """Start the warm vl-convert process and wait until it answers (it converts a chart first: ~2 s)."""
    import importlib.util

    if importlib.util.find_spec("vl_convert") is None:
        raise RuntimeError("vl-convert-python is not installed here")
    bundle = os.path.dirname(os.path.dirname(os.path.abspath(services.__file__)))
    code = f"import sys; sys.path.insert(0, {bundle!r}); from coco_worker.vega_service import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "FONTCONFIG_PATH")}
    env.update(HOME=FOLDER, TMPDIR=FOLDER, XDG_CACHE_HOME=FOLDER)
    service = services.start(NAME, [sys.executable, "-I", "-B", "-c", code], env, folder=FOLDER)
    why = _ping(service, 60.0)
    if why:
        services.kill_all()
        raise RuntimeError(f"the vl-convert process did not start: {why}")


def job_fds() -> list[int]:
    service = services.SERVICES.get(NAME)
    return [service.to_service, service.from_service] if service else []


def check() -> str:
    """After a job: '' when the vl-convert process answers a ping at once (and sent nothing else), else why."""
    service = services.SERVICES.get(NAME)
    if service is None or not service.alive():
        return "the warm vl-convert process is gone"
    return _ping(service, PING_S)


def document(source: str, limits: dict):
    """Render the job's Vega-Lite spec in the warm vl-convert process."""
    spec = parse_spec(source)
    service = services.SERVICES.get(NAME)
    if service is None or not service.alive():
        raise DocumentError("the vega-lite renderer is not running in this worker")
    deadline = time.monotonic() + max(1.0, float(limits.get("timeout", 30.0)) - 0.5)
    payload = json.dumps(spec).encode()
    write_frame(
        service.to_service,
        {"type": "render", "max_pixels": int(limits.get("max_pixels", 40_000_000))},
        payload,
    )
    header, png = _answer(service, deadline, int(limits.get("max_png_bytes", 32 << 20)))
    if header is None:
        err = DocumentError(png.decode() or "vl-convert did not answer before the deadline")
        err.status = "timeout" if not png else ("oom" if b"killed" in png else "error")
        raise err
    if header.get("type") == "failed":
        raise DocumentError(f"vl-convert could not render the spec: {str(header.get('error', ''))[-2000:]}")
    if header.get("type") != "png" or png_dimensions(png) is None:
        raise DocumentError("the vega-lite renderer answered without a PNG")
    texts = header.get("texts")
    boxes = [t["box"] for t in texts] if isinstance(texts, list) else None
    return png, "vega-lite", boxes, {"texts": texts}


def parse_spec(source: str) -> dict:
    """The spec as a JSON object; DocumentError for JSON that is not one, too deep, or naming a remote URL."""
    try:
        spec = json.loads(source)
    except RecursionError:
        raise DocumentError(f"the spec nests deeper than {MAX_SPEC_DEPTH} levels") from None
    except ValueError as exc:
        refused = DocumentError(f"the program is not a Vega-Lite JSON spec: {exc}")
        refused.status = "no_image"
        raise refused from None
    if not isinstance(spec, dict):
        raise DocumentError("a Vega-Lite spec is a JSON object ({...}), not a list or a value")
    todo = [(spec, 0)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_SPEC_DEPTH:
            raise DocumentError(f"the spec nests deeper than {MAX_SPEC_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("url", "href") and isinstance(value, str) and not value.startswith("data:"):
                    raise DocumentError(
                        f"the spec loads {key} {value[:120]!r}: remote and file data are refused (no network "
                        'in the sandbox); put the data inline as "values"'
                    )
                todo.append((value, depth + 1))
        elif isinstance(node, list):
            todo.extend((item, depth + 1) for item in node)
    return spec


def _answer(service, deadline: float, max_png: int) -> tuple[dict | None, bytes]:
    """The service's next frame, or (None, why) when it dies or the deadline passes."""
    reader = FrameReader(max_payload=max_png)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, b""
        if not select.select([service.from_service], [], [], remaining)[0]:
            continue
        chunk = os.read(service.from_service, 1 << 20)
        if not chunk:
            return None, b"the vl-convert process was killed while rendering (most likely out of memory)"
        try:
            frames = reader.feed(chunk)
        except ValueError as exc:
            return None, f"the vl-convert process sent a bad frame: {exc}".encode()
        if frames:
            return frames[0]


def _ping(service, timeout: float) -> str:
    try:
        write_frame(service.to_service, {"type": "ping"})
    except OSError as exc:
        return f"cannot reach it ({exc})"
    header, why = _answer(service, time.monotonic() + timeout, 1 << 10)
    if header is None:
        return why.decode() or f"it did not answer a ping within {timeout:g} s"
    return "" if header.get("type") == "pong" else f"it answered {str(header.get('type'))[:40]!r} to a ping"
