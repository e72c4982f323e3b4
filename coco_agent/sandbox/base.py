"""The sandbox interface: run one drawing program, get a PNG back (as bytes) or a clear failure."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, get_args

from coco_agent.errors import SandboxUnavailable as SandboxUnavailable  # raised by the sandboxes
from coco_agent.formats import FormatName
from coco_agent.sandbox.protocol import MAX_TEXT_BOXES, MAX_TEXT_CHARS, MAX_TEXTS  # more: unknown

Status = Literal["ok", "error", "timeout", "oom", "no_image", "rejected"]
Format = FormatName  # the draft formats: coco_agent/formats/
STATUSES: frozenset[str] = frozenset(get_args(Status))
MAX_TEXT = 128 * 1024  # characters kept of any text field a worker reports
Box = tuple[int, int, int, int]


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Worker-reported text made safe for files, JSON and terminals: a str, valid UTF-8, no NUL, capped.

    The job controls parts of what the worker reports (its error message, the name it saved to), so these can
    hold lone surrogates, NUL bytes or megabytes of text, or not be strings at all.
    """
    text = value if isinstance(value, str) else "" if value is None else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} characters dropped]"


def clean_text_boxes(value: object, width: int, height: int) -> list[Box] | None:
    """Worker-reported text boxes, validated: a list of at most MAX_TEXT_BOXES [x0, y0, x1, y1] of plain ints,
    clipped to the image, empty ones dropped. Anything else (wrong type, too many, a float, a bool, a nested
    list) makes the whole list None (unknown): the job controls the process that measured them.
    """
    if not isinstance(value, list) or len(value) > MAX_TEXT_BOXES or width <= 0 or height <= 0:
        return None
    boxes: list[Box] = []
    for item in value:
        if not (isinstance(item, list | tuple) and len(item) == 4 and all(type(v) is int for v in item)):
            return None
        x0, y0, x1, y1 = item
        box = (
            max(0, min(x0, width)),
            max(0, min(y0, height)),
            max(0, min(x1, width)),
            max(0, min(y1, height)),
        )
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    return boxes


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def clean_texts(value: object, width: int, height: int) -> list[dict] | None:
    """Worker-reported drawn strings, validated: at most MAX_TEXTS records {text, box, container, font_px,
    rotation, color} with a str, plain-int boxes (not clipped: a string may reach past the canvas; each corner
    within ten canvases of it), a container box or None, a font size in px (0 < px < 10000) or None, an angle
    in degrees, a "#rrggbb" colour or None. Anything else makes the whole list None (unknown): the job controls
    the process that measured them."""
    if not isinstance(value, list) or len(value) > MAX_TEXTS or width <= 0 or height <= 0:
        return None
    span = 10 * max(width, height)

    def box(item: object) -> list[int]:
        if not (isinstance(item, list) and len(item) == 4 and all(type(v) is int for v in item)):
            raise ValueError
        if not all(-span <= v <= span for v in item) or item[0] > item[2] or item[1] > item[3]:
            raise ValueError
        return list(item)

    texts = []
    try:
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                return None
            container, font = item.get("container"), item.get("font_px")
            rotation, color = item.get("rotation", 0), item.get("color")
            if font is not None and (type(font) not in (int, float) or not 0 < font < 10_000):
                return None
            if type(rotation) not in (int, float) or not -1e4 < rotation < 1e4:
                return None
            if color is not None and not (isinstance(color, str) and _HEX_COLOUR.fullmatch(color)):
                return None
            texts.append(
                {
                    "text": clean_text(item["text"], MAX_TEXT_CHARS),
                    "box": box(item.get("box")),
                    "container": None if container is None else box(container),
                    "font_px": None if font is None else round(float(font), 2),
                    "rotation": round(float(rotation), 2) % 360,
                    "color": None if color is None else "#" + color[1:].lower(),
                }
            )
    except ValueError:
        return None
    return texts


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one job."""

    timeout_s: float = 30.0
    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 64
    output_bytes: int = 64 * 1024  # stdout/stderr kept per stream
    max_png_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_source_bytes: int = 1024 * 1024
    facts: bool = True  # the worker reports what the program drew, as data (coco_worker/facts.py)
    hide_text: bool = False  # draw the picture with every text drawing nothing (layered text)


def encode_source(code: str, limits: SandboxLimits) -> tuple[bytes, str]:
    """The program as UTF-8 bytes, and why it is refused ("" when it is not)."""
    source = code.encode("utf-8", "surrogatepass")
    if len(source) > limits.max_source_bytes:
        return source, f"source of {len(source)} bytes exceeds the {limits.max_source_bytes}-byte limit"
    return source, ""


@dataclass
class RenderResult:
    """What a sandbox returns for one job. ``png`` holds validated PNG bytes when status is ok."""

    status: Status
    png: bytes | None = None
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    sandbox: str = ""
    width: int = 0
    height: int = 0
    extra: dict = field(default_factory=dict)
    # Where the picture shows text the program drew, in its pixels (x0, y0, x1, y1; x1/y1 exclusive), reported
    # by the worker from the drawing calls and validated here; None: unknown (not reported, or not trusted).
    text_boxes: list[Box] | None = None
    # The drawn strings the renderer knows, with their boxes (not clipped), font sizes, angles and colours
    # (clean_texts); None: unknown. What the geometry checks read (coco_agent/geometry.py) and the editable
    # deliverable (final.svg) sets as live text.
    texts: list[dict] | None = None
    # What the program drew, as data (texts with roles and boxes, series, wedges), reported by the worker and
    # validated here (coco_agent/sandbox/facts.py); None: unknown.
    facts: dict | None = None
    # The worker drew this picture with its text hidden (the job asked for it and the renderer honoured it).
    text_hidden: bool = False

    def __post_init__(self) -> None:
        # A forged result frame can claim any status: never pass an unknown one on.
        if not isinstance(self.status, str) or self.status not in STATUSES:
            self.error = (
                f"the sandbox reported an unknown status {clean_text(self.status, 200)!r}: {self.error}"
            )
            self.status = "error"
        self.error, self.stdout, self.stderr = map(clean_text, (self.error, self.stdout, self.stderr))
        for key, value in self.extra.items():
            if isinstance(value, str) or key == "captured":
                self.extra[key] = clean_text(value, 1000)

    def take_text_boxes(self, header: dict) -> None:
        """Set `text_boxes` and `facts` from a result frame's header, for the validated PNG's size (call after
        decoding)."""
        from coco_agent.sandbox.facts import clean_facts

        self.text_boxes = (
            clean_text_boxes(header.get("text_boxes"), self.width, self.height) if self.ok else None
        )
        self.texts = clean_texts(header.get("texts"), self.width, self.height) if self.ok else None
        self.facts = clean_facts(header.get("facts"), self.width, self.height) if self.ok else None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.png is not None

    def summary(self) -> dict:
        """JSON-safe record without the image bytes."""
        d = asdict(self)
        d.pop("png")
        return d


def result_from_frame(
    kind: str, header: dict, png: bytes, limits: SandboxLimits, started: float, **extra: object
) -> RenderResult:
    """The result a worker's result frame describes: fields cleaned, the PNG checked, decoded and re-encoded on
    the host (what the host keeps is what it decoded: see sandbox/png.py), boxes taken.

    `started` is the host's time.monotonic() when the job began; `extra` adds host-side notes (container, worker).
    """
    from coco_agent.sandbox.png import ImageRejected, clean_png

    result = RenderResult(
        status=header.get("status", "error"),
        seconds=round(time.monotonic() - started, 3),
        sandbox=kind,
        error=header.get("error", ""),
        stdout=header.get("stdout", ""),
        stderr=header.get("stderr", ""),
        extra={"captured": header.get("captured", ""), "worker_seconds": header.get("seconds"), **extra},
        text_hidden=header.get("text_hidden") is True,
    )
    if result.status == "ok":
        try:
            fresh = clean_png(png, limits.max_pixels, limits.max_png_bytes)
        except ImageRejected as exc:
            result.status, result.error = "rejected", str(exc)
            return result
        result.png, result.width, result.height = fresh.png, fresh.width, fresh.height
        result.take_text_boxes(header)
    return result


class Sandbox(Protocol):
    """Anything that can render a program in isolation."""

    kind: str  # "docker", "process", ...

    def render(self, code: str, fmt: Format, limits: SandboxLimits | None = None) -> RenderResult: ...

    def close(self) -> None: ...
