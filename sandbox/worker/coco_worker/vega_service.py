"""The vega-lite service: a warm vl-convert (its bundled Vega-Lite, Vega and V8) in a process of its own, started
by the zygote, answering one request at a time on fds 3 (requests) and 4 (answers) in the worker's frames.

vl-convert starts threads (a V8 isolate and an async runtime) on its first conversion and takes about 2 s to
do so, so it cannot be warmed in the zygote (which forks) nor started per job; this process keeps it warm.
Requests: {"type": "render", "max_pixels"} + the spec (UTF-8 JSON) -> {"type": "png", "texts"} + PNG, or
{"type": "failed", "error"}; {"type": "ping"} -> {"type": "pong"}. It never loads anything: no base URL is
allowed (the job's renderer also refuses a spec that names one, and the sandbox has no network).
"""

from __future__ import annotations

import json
import math
import sys

from coco_worker.protocol import MAX_TEXT_CHARS, MAX_TEXTS, read_frame, write_frame

IN_FD, OUT_FD = 3, 4
WARM_SPEC = {
    "data": {"values": [{"a": "A", "b": 1}, {"a": "中文", "b": 2}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
    "title": "Ag 1.0",
}
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def main() -> int:
    import vl_convert

    convert(vl_convert, json.dumps(WARM_SPEC), 40_000_000)  # the isolate and Vega-Lite, warm before any job
    while True:
        try:
            frame = read_frame(IN_FD, max_payload=2 << 20)
        except (ValueError, EOFError, OSError):
            return 1
        if frame is None:
            return 0
        header, payload = frame
        kind = header.get("type")
        if kind == "ping":
            write_frame(OUT_FD, {"type": "pong"})
        elif kind == "render":
            try:
                png, texts = convert(vl_convert, payload.decode("utf-8"), int(header.get("max_pixels", 0)))
            except Exception as exc:  # the spec's fault: vl-convert's own message
                write_frame(OUT_FD, {"type": "failed", "error": str(exc)[-3000:]})
                continue
            write_frame(OUT_FD, {"type": "png", "texts": texts}, png)
        else:
            return 1


def convert(vl_convert, spec: str, max_pixels: int) -> tuple[bytes, list | None]:
    """PNG of the spec and its text marks (string, estimated box, font size) from the same scenegraph."""
    scene = vl_convert.vegalite_to_scenegraph(spec, allowed_base_urls=[])
    width, height = int(scene.get("width", 0)), int(scene.get("height", 0))
    if max_pixels and width * height > max_pixels:
        raise ValueError(f"chart of {width}x{height} px exceeds the {max_pixels} pixel cap")
    png = vl_convert.vegalite_to_png(spec, scale=1, allowed_base_urls=[])
    try:
        texts = scene_texts(scene)
    except Exception:
        texts = None
    return png, texts


def scene_texts(scene: dict) -> list[dict] | None:
    """Text marks of a Vega scenegraph, with boxes from DejaVu Sans metrics (Vega's own measuring is not
    exported), rotated with the mark, in the PNG's pixels."""
    from PIL import ImageFont

    fonts: dict[float, object] = {}
    out: list[dict] = []
    origin = scene.get("origin") or [0, 0]
    todo = [(scene.get("scenegraph") or {}, float(origin[0]), float(origin[1]), "")]
    while todo:
        node, ox, oy, marktype = todo.pop()
        if isinstance(node, list):
            todo.extend((child, ox, oy, marktype) for child in node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("marktype", marktype)
        if "marktype" in node:  # a mark: its items share its type
            todo.append((node.get("items") or [], ox, oy, kind))
            continue
        x, y = ox + float(node.get("x") or 0), oy + float(node.get("y") or 0)
        if kind == "text" and node.get("text") not in (None, "") and node.get("opacity", 1) != 0:
            lines = node["text"] if isinstance(node["text"], list) else [node["text"]]
            size = float(node.get("fontSize") or 11)
            font = fonts.get(size) or fonts.setdefault(size, ImageFont.truetype(FONT, max(1, round(size))))
            text = " ".join(str(line) for line in lines)
            w = max(font.getlength(str(line)) for line in lines)
            h = size * 1.2 * len(lines)
            align, baseline = node.get("align", "left"), node.get("baseline", "alphabetic")
            left = {"center": -w / 2, "right": -w}.get(align, 0.0)
            top = {"top": 0.0, "middle": -h / 2, "bottom": -h, "line-top": 0.0}.get(baseline, -size * 0.8)
            corners = [(left, top), (left + w, top), (left, top + h), (left + w, top + h)]
            angle = math.radians(float(node.get("angle") or 0))
            c, s = math.cos(angle), math.sin(angle)
            xs = [x + cx * c - cy * s for cx, cy in corners]
            ys = [y + cx * s + cy * c for cx, cy in corners]
            box = [math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))]
            out.append({"text": text[:MAX_TEXT_CHARS], "box": box, "container": None, "font_px": size})
            if len(out) > MAX_TEXTS:
                return None
        elif kind == "group":
            todo.append((node.get("items") or [], x, y, ""))
    return out


if __name__ == "__main__":
    sys.exit(main())
