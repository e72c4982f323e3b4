"""Measured geometry checks: what the renderer itself knows about the text it drew, checked before any critic.

The sandbox reports `texts` (RenderResult.texts: {text, box, container, font_px} per drawn string, boxes in the
draft's pixels, not clipped, validated on the host); these checks turn them into exact problems for the code
writer, with no model call:

- missing: a string the prompt quotes (or the batch file's `texts`) that no drawn text contains;
- misspelled: the same, but a drawn string is close to it (the message quotes what was drawn);
- overflow: a text box past its container's box or past the canvas, by more than OVERFLOW_TOLERANCE_PX;
- overlap: two text boxes (not in the same container) sharing more than OVERLAP_SHARE of the smaller one;
- too_small: a font size below what is readable at the draft's size (min_font_px).

Strings compare after NFKC, case folding and dropping punctuation (as the text score does); Chinese compares
characters without spaces. Pure functions only: execute writes the result to attempts/NN/geometry.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from typing import Any

from coco_agent.scoring.text_score import detect_mode, normalize, quoted_strings

OVERFLOW_TOLERANCE_PX = 2  # antialiasing, rounding outwards to whole pixels
OVERLAP_SHARE = 0.15  # share of the smaller box two texts may share before it counts
MIN_FONT_PX = 9.0  # the smallest readable text on any canvas
MIN_FONT_SHARE = 0.01  # ... and at least this share of the canvas's shorter side
MISSPELLED_RATIO = 0.75  # a drawn string this similar to an expected one counts as a misspelling of it
MAX_PER_KIND = 8  # problems of one kind described to the writer (the count says how many more)
SIDES = ("left", "top", "right", "bottom")


@dataclass
class GeometryProblem:
    kind: str  # missing | misspelled | overflow | overlap | too_small
    text: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class GeometryReport:
    """The geometry checks of one draft: what was expected and drawn, and every problem found."""

    size: tuple[int, int]
    expected: list[str]
    texts: list[dict]
    problems: list[GeometryProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for problem in self.problems:
            out[problem.kind] = out.get(problem.kind, 0) + 1
        return out

    def messages(self) -> list[str]:
        """What the code writer hears: at most MAX_PER_KIND problems of each kind, then how many more."""
        shown: list[str] = []
        for kind, count in self.counts().items():
            of_kind = [p.message for p in self.problems if p.kind == kind]
            shown += of_kind[:MAX_PER_KIND]
            if count > MAX_PER_KIND:
                shown.append(f"... and {count - MAX_PER_KIND} more {kind.replace('_', ' ')} problem(s)")
        return shown

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": list(self.size),
            "expected": self.expected,
            "counts": self.counts(),
            "problems": [asdict(p) for p in self.problems],
            "texts": self.texts,
        }


def expected_strings(prompt: str, texts: Sequence[str] | None) -> list[str]:
    """The strings the picture must show: the batch file's `texts` when given, else what the prompt quotes."""
    chosen = [t for t in (texts or []) if t and t.strip()]
    return chosen or quoted_strings(prompt)


def min_font_px(width: int, height: int) -> float:
    """The smallest readable font size in a draft of this size."""
    return max(MIN_FONT_PX, round(MIN_FONT_SHARE * min(width, height), 1))


def check_geometry(texts: list[dict], expected: Iterable[str], width: int, height: int) -> GeometryReport:
    """Every geometry problem of a draft whose renderer reported `texts` (validated records, see base.clean_texts)."""
    report = GeometryReport(size=(width, height), expected=list(expected), texts=texts)
    report.problems += _string_problems(texts, report.expected)
    report.problems += _overflow_problems(texts, width, height)
    report.problems += _overlap_problems(texts)
    report.problems += _small_problems(texts, width, height)
    return report


def _key(text: str, mode: str) -> str:
    return normalize(text, mode)  # type: ignore[arg-type]


def _string_problems(texts: list[dict], expected: list[str]) -> list[GeometryProblem]:
    problems = []
    drawn = [t["text"] for t in texts]
    for want in expected:
        mode = detect_mode([want])
        key = _key(want, mode)
        if not key:
            continue
        pieces = [_key(t, mode) for t in drawn]
        joiner = "" if mode == "zh" else " "
        haystack = joiner.join(p for p in pieces if p)
        if key in haystack:
            continue
        close, ratio = _closest(key, pieces, drawn, mode)
        if close is not None and ratio >= MISSPELLED_RATIO:
            message = (
                f"{want!r} is misspelled: the picture shows {close!r} instead; write it exactly as given"
            )
            problems.append(GeometryProblem("misspelled", want, message, {"drawn": close, "ratio": ratio}))
        else:
            message = f"{want!r} is missing: no text in the picture contains it; show it exactly as given"
            problems.append(GeometryProblem("missing", want, message))
    return problems


def _closest(key: str, pieces: list[str], drawn: list[str], mode: str) -> tuple[str | None, float]:
    """The drawn string (or run of words in one) most similar to `key`, and how similar (0-1)."""
    best, best_ratio = None, 0.0
    size = len(key) if mode == "zh" else len(key.split())
    for piece, original in zip(pieces, drawn, strict=True):
        units = list(piece) if mode == "zh" else piece.split()
        joiner = "" if mode == "zh" else " "
        windows = {piece}
        if len(units) > size:
            windows |= {joiner.join(units[i : i + size]) for i in range(len(units) - size + 1)}
        for window in windows:
            matcher = SequenceMatcher(None, key, window, autojunk=False)
            if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
                continue
            ratio = matcher.ratio()
            if ratio > best_ratio:
                best, best_ratio = (original if window == piece else window), ratio
    return best, round(best_ratio, 3)


def _past(box: Sequence[int], outer: Sequence[int]) -> dict[str, int]:
    """How far `box` reaches past `outer` on each side (only sides past the tolerance)."""
    past = {
        "left": outer[0] - box[0],
        "top": outer[1] - box[1],
        "right": box[2] - outer[2],
        "bottom": box[3] - outer[3],
    }
    return {side: px for side, px in past.items() if px > OVERFLOW_TOLERANCE_PX}


def _sides(past: dict[str, int]) -> str:
    return " and ".join(f"{px} px on the {side}" for side, px in past.items())


def _overflow_problems(texts: list[dict], width: int, height: int) -> list[GeometryProblem]:
    problems = []
    canvas = (0, 0, width, height)
    for item in texts:
        box, container = item["box"], item.get("container")
        off = _past(box, canvas)
        if off:
            message = f"{item['text']!r} runs off the canvas by {_sides(off)}"
            problems.append(GeometryProblem("overflow", item["text"], message, {"past": off, "of": "canvas"}))
            continue
        past = _past(box, container) if container else {}
        if past:
            message = f"{item['text']!r} overflows its box by {_sides(past)}"
            problems.append(GeometryProblem("overflow", item["text"], message, {"past": past, "of": "box"}))
    return problems


def _overlap_problems(texts: list[dict]) -> list[GeometryProblem]:
    """Pairs of text boxes overlapping beyond OVERLAP_SHARE of the smaller one (a sweep along x)."""
    problems = []
    order = sorted(range(len(texts)), key=lambda i: texts[i]["box"][0])
    active: list[int] = []
    for i in order:
        a = texts[i]["box"]
        active = [j for j in active if texts[j]["box"][2] > a[0]]
        for j in active:
            first, second = texts[j], texts[i]
            if first.get("container") and first.get("container") == second.get("container"):
                continue  # the same block's flow: lines and inline runs of one paragraph
            b = first["box"]
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            if w <= OVERFLOW_TOLERANCE_PX or h <= OVERFLOW_TOLERANCE_PX:
                continue
            smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
            if smaller > 0 and w * h > OVERLAP_SHARE * smaller:
                message = (
                    f"{first['text']!r} and {second['text']!r} overlap ({w}x{h} px); move one of them apart"
                )
                detail = {"with": second["text"], "overlap_px": [w, h]}
                problems.append(GeometryProblem("overlap", first["text"], message, detail))
        active.append(i)
    return problems


def _small_problems(texts: list[dict], width: int, height: int) -> list[GeometryProblem]:
    problems = []
    floor = min_font_px(width, height)
    for item in texts:
        font = item.get("font_px")
        if font is not None and font < floor:
            message = (
                f"{item['text']!r} is {font:g} px text, too small to read on a {width}x{height} picture; "
                f"use at least {floor:g} px"
            )
            problems.append(
                GeometryProblem("too_small", item["text"], message, {"font_px": font, "min": floor})
            )
    return problems
