"""`--format auto`: which draft format suits a prompt, decided without a model call when the prompt is clear.

`classify` reads the prompt for a named format ("as an HTML page", "in Graphviz") and for the kind of picture
(charts -> matplotlib, or vega-lite when named; posters, slides, menus, signs, cards, infographics, page mock-ups ->
html; diagrams, flowcharts, trees, state machines, org charts -> graphviz; icons, logos, flat illustrations ->
svg; scenes -> svg, the flat layout the refiner paints over). It is sure when one kind leads clearly; else it
returns no format and the code writer chooses in the same call that writes the program (prompts/format_auto.md):
the fence language of its answer names the format (`from_answer`). A user's explicit --format never comes here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coco_agent.formats import DEFAULT, FORMATS, guess
from coco_agent.scoring.text_score import quoted_strings

AUTO = "auto"
SCENE_FORMAT = "svg"
MIN_SCORE = 2  # a kind needs this much evidence ...
MIN_LEAD = 2  # ... and this much more than the runner-up, else the code writer chooses

# A named format: sure at once (the first one named wins).
NAMED: tuple[tuple[str, str], ...] = (
    ("vega-lite", r"vega[- ]?lite|vega\b"),
    ("graphviz", r"graphviz|\bdot (?:language|file|graph)|\bdigraph\b"),
    ("html", r"\bhtml\b|\bcss\b|web ?page mock|\bweb ?page\b"),
    ("svg", r"\bsvg\b|vector graphic"),
    ("matplotlib", r"matplotlib|pyplot"),
    ("pil", r"\bpil\b|pillow"),
)

# (kind, format, weight, pattern): evidence for a kind of picture; weights add up per kind.
EVIDENCE: tuple[tuple[str, str, int, str], ...] = (
    (
        "chart",
        "matplotlib",
        3,
        r"(?:bar|line|pie|scatter|area|bubble|donut|radar|stacked|column)[- ]?(?:chart|graph|plot)s?",
    ),
    (
        "chart",
        "matplotlib",
        3,
        r"\b(?:histogram|heat ?map|box ?plot|violin plot|scatter ?plot|plot)s?\b",
    ),
    ("chart", "matplotlib", 3, r"(?<!org )(?<!flow )(?<!organization )(?<!organizational )\bcharts?\b"),
    (
        "chart",
        "matplotlib",
        1,
        r"\b(?:axis|axes|x-axis|y-axis|legend|data|values|percent|%|trend|sales|revenue)\b",
    ),
    ("chart", "matplotlib", 1, r"\b(?:q[1-4]|19\d\d|20\d\d)\b"),
    (
        "design",
        "html",
        3,
        r"\b(?:poster|flyer|banner|slide|slides|menu|signs?|signage|business card|greeting card"
        r"|invitation|card|infographic|brochure|magazine cover|book cover|cover page|certificate|ticket|coupon"
        r"|resume|newsletter|landing page|web ?site|dashboard mock-?up|mock-?up|ui|app screen|screenshot"
        r"|packaging|price list|timetable|schedule|leaflet|advert(?:isement)?|\bad\b|billboard)s?\b",
    ),
    (
        "design",
        "html",
        1,
        r"\b(?:headline|title text|tagline|typography|font|text reads?|reading|saying|says|caption"
        r"|bullet points?|paragraph|heading|subtitle|button)\b",
    ),
    (
        "diagram",
        "graphviz",
        3,
        r"\b(?:flow ?chart|flow diagram|diagram|tree diagram|binary tree|syntax tree|tree of|org(?:anization(?:al)?)? chart"
        r"|state machine|finite automaton|dependency graph|call graph|network graph|graph of nodes|mind ?map"
        r"|hierarchy|pipeline|decision tree|family tree|uml|er diagram|sequence of steps)s?\b",
    ),
    (
        "diagram",
        "graphviz",
        1,
        r"\b(?:nodes?|edges?|arrows? (?:from|to|between)|boxes connected|connected to"
        r"|parent|child(?:ren)?|steps?|stages?|states?|transitions?)\b",
    ),
    (
        "icon",
        "svg",
        3,
        r"\b(?:icon|logo|emblem|badge|pictogram|glyph|emoji|sticker|flat illustration"
        r"|clip ?art|line art|vector illustration|silhouette|mascot)\b",  # one: the subject; icons: a part
    ),
    ("icon", "svg", 1, r"\b(?:flat|minimal(?:ist)?|geometric|simple shapes?|outline|icons|logos)\b"),
    (
        "scene",
        SCENE_FORMAT,
        3,
        r"\b(?:photo(?:graph)?|photorealistic|realistic|landscape|portrait|scene|painting"
        r"|cityscape|seascape|sunset|sunrise|forest|mountains?|beach|interior|still life)s?\b",
    ),
    (
        "scene",
        SCENE_FORMAT,
        1,
        r"\b(?:sky|clouds?|trees?|river|lake|ocean|people|person|cat|dog|bird|horse"
        r"|car|house|street|room|standing|sitting|walking)\b",
    ),
)
_NAMED = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in NAMED]
_EVIDENCE = [(kind, fmt, weight, re.compile(p, re.IGNORECASE)) for kind, fmt, weight, p in EVIDENCE]


@dataclass(frozen=True)
class Choice:
    """What `classify` decided: a format (None: not sure, the code writer chooses), why, and the evidence."""

    format: str | None
    why: str
    scores: dict[str, int]
    by: str = "classifier"

    def as_dict(self) -> dict:
        return {"format": self.format, "by": self.by, "why": self.why, "scores": self.scores}


def classify(prompt: str) -> Choice:
    """The format for a prompt when the prompt makes it clear, else Choice(None, ...). Deterministic, no model.

    Quoted strings are left out (a sign that says "Chart of the day" is still a sign)."""
    text = prompt or ""
    for quoted in quoted_strings(text):
        text = text.replace(quoted, " ")
    for name, pattern in _NAMED:
        match = pattern.search(text)
        if match:
            return Choice(name, f"the prompt names the format ({match.group(0)!r})", {})
    scores: dict[str, int] = {}
    formats_of: dict[str, str] = {}
    hits: dict[str, list[str]] = {}
    for kind, fmt, weight, pattern in _EVIDENCE:
        found = [m.group(0).lower() for m in pattern.finditer(text)]
        if found:
            scores[kind] = scores.get(kind, 0) + weight * min(len(found), 3)
            formats_of[kind] = fmt
            hits.setdefault(kind, []).extend(found)
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] < MIN_SCORE:
        return Choice(None, "the prompt names no kind of picture the classifier knows", scores)
    (kind, score), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0)
    words = ", ".join(dict.fromkeys(hits[kind]))
    if score - runner_up < MIN_LEAD:
        other = ranked[1][0]
        return Choice(None, f"unclear: {kind} ({score}) vs {other} ({runner_up})", scores)
    return Choice(formats_of[kind], f"a {kind} ({words})", scores)


def from_answer(answer_fence: str, code: str) -> tuple[str, str]:
    """The format the code writer chose under `auto`: its fence language's format (python: matplotlib unless
    the program is evidently PIL), else what the program evidently is, else DEFAULT; and why."""
    lang = (answer_fence or "").lower()
    named = next((n for n, r in FORMATS.items() if lang and lang in r.fences and r.fence != "python"), None)
    if named:
        return named, f"the code writer answered with a ```{lang} block: {named}"
    name = guess(code) or DEFAULT
    return name, f"the code writer's {f'```{lang}' if lang else 'untagged'} answer reads as {name}"
