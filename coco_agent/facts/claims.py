"""What a prompt states that can be checked against a drawing, read conservatively: a pattern is read only when
it is unambiguous, and everything else is left to the critic.

Read:
- quoted strings ("...", '...', “...”, 「...」): each must be drawn;
- the title: ``titled 'X'``, ``with the title "X"``, ``title: "X"``;
- a category range with values: ``Q1-Q4 sales: 100, 120, 150, 140``, ``2019-2023: 5, 7, 9, 8, 12``,
  ``Mon-Fri: ...``, ``Jan-Jun: ...`` (as many values as categories, else skipped);
- labelled values: ``Apples 30, Bananas 45 and Cherries 25``, ``North: 40%, South: 35%``, ``A (40%), B (60%)``,
  ``40% Rent, 35% Food``;
- named value lists: ``2023: 10, 20, 30; 2024: 15, 25, 35``, ``revenue: 5, 7, 9``;
- percentage lists: ``a pie of 40/35/25%``, ``40%, 35% and 25%``.
Numbers with a magnitude suffix (``5k``, ``1.2M``) are skipped: whether the chart shows 5 or 5000 is a choice.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from coco_agent.scoring.text_score import quoted_strings

NUM = r"-?\d+(?:\.\d+)?"
_SEP = r"(?:\s*,\s*(?:and\s+)?|\s*;\s*|\s+and\s+|\s*/\s*)"
NUMLIST = rf"(?:\$?{NUM}%?(?:{_SEP}\$?{NUM}%?(?!\s*[:=]))+)(?![\w.]|\s*[kKmMbB]\b)"
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DAY = r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)"
RANGE = re.compile(
    rf"(?<![\w-])(?:(?P<p>[A-Za-z]{{0,3}})(?P<a>\d{{1,4}})\s*(?:-|–|—|to)\s*(?P=p)(?P<b>\d{{1,4}})"
    rf"|(?P<m1>{_MONTH})\s*(?:-|–|—|to)\s*(?P<m2>{_MONTH})|(?P<d1>{_DAY})\s*(?:-|–|—|to)\s*(?P<d2>{_DAY}))(?![\w-])",
    re.IGNORECASE,
)
RANGE_VALUES = re.compile(
    rf"^\s*(?P<what>[A-Za-z][A-Za-z \-]{{0,40}}?)?\s*(?:[:=]|\bof\b|\bwere\b|\bare\b|\bis\b)?\s*(?P<values>{NUMLIST})"
)
NAMED = re.compile(
    rf"(?:^|(?<=[\s,;(]))(?P<name>[A-Za-z0-9][\w.&'-]*(?: [A-Za-z0-9][\w.&'-]*){{0,3}})\s*[:=]\s*(?P<values>{NUMLIST})"
)
# up to four words; an apostrophe only inside a word (Women's), never a closing quote ('Title' with Plums 84)
_LABEL = r"[A-Za-z](?:[\w&.-]|'(?=\w))*(?: [A-Za-z](?:[\w&.-]|'(?=\w))*){0,3}"
PAIR_LV = re.compile(  # "Apples 30", "North: 40%", "Rent (40%)"
    rf"(?P<label>{_LABEL})\s*(?::\s*|=\s*|\(\s*|\s+)(?P<num>\$?{NUM})(?P<pct>\s*%)?\s*\)?(?![\w.]|\s*[kKmMbB]\b)"
)
PAIR_VL = re.compile(rf"(?P<num>{NUM})(?P<pct>\s*%)\s+(?P<label>{_LABEL})")  # "40% Rent"
PAIR_SEP = re.compile(r"^\s*(?:,\s*(?:and\s+)?|;\s*|and\s+|&\s*)$")  # what joins two pairs of one list
TITLE = re.compile(
    r"""(?:\btitled|\bentitled|\bwith\s+(?:the|a)\s+title|\btitle\s*:?)\s*["'“‘«]([^"'”’»]{1,200})["'”’»]""",
    re.IGNORECASE,
)
STOPWORDS = {
    "a",
    "an",
    "the",
    "of",
    "and",
    "with",
    "for",
    "to",
    "in",
    "on",
    "at",
    "is",
    "are",
    "was",
    "were",
    "by",
    "from",
    "showing",
    "shows",
    "show",
    "comparing",
    "compare",
    "sales",
    "values",
    "value",
    "data",
    "chart",
    "pie",
    "bar",
    "line",
    "graph",
    "plot",
    "between",
    "about",
    "around",
    "over",
    "under",
    "than",
    "each",
    "per",
    "total",
    "top",
}
KINDS = (
    ("pie", ("pie", "donut", "doughnut")),
    ("bar", ("bar", "column", "histogram")),
    ("line", ("line",)),
    ("scatter", ("scatter",)),
)


@dataclass
class Series:
    """Values the prompt states, in order: with their category labels, a series name, or neither."""

    values: list[float]
    labels: list[str] | None = None
    name: str | None = None
    percent: bool = False
    chart: str | None = None
    source: str = ""
    decimals: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Claims:
    """Everything read from one prompt, and what was recognised but not read (``skipped``)."""

    strings: list[str] = field(default_factory=list)
    title: str | None = None
    series: list[Series] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.strings or self.title or self.series)


def chart_kind(prompt: str) -> str | None:
    """The kind of chart the prompt names first (pie, bar, line, scatter), or None."""
    lowered = prompt.lower()
    found = [(lowered.find(w), kind) for kind, words in KINDS for w in words if re.search(rf"\b{w}", lowered)]
    found = [f for f in found if f[0] >= 0]
    return min(found)[1] if found else None


def numbers(text: str) -> tuple[list[float], list[int], bool]:
    """The numbers of a value list, their decimals, and whether they are percentages."""
    found = re.findall(rf"\$?({NUM})(%?)", text)
    values = [float(n) for n, _ in found]
    decimals = [len(n.split(".")[1]) if "." in n else 0 for n, _ in found]
    percent = "%" in text
    return values, decimals, percent


def expand_range(match: re.Match) -> list[str] | None:
    """Q1-Q4 -> Q1 Q2 Q3 Q4; 2019-2023 -> years; Jan-Jun, Mon-Fri -> names as written in short form."""
    if match.group("a") is not None:
        a, b, prefix = int(match.group("a")), int(match.group("b")), match.group("p")
        if not 0 < b - a <= 50:
            return None
        return [f"{prefix}{i}" for i in range(a, b + 1)]
    for first, last, names in (("m1", "m2", MONTHS), ("d1", "d2", DAYS)):
        if match.group(first):
            i, j = names.index(match.group(first)[:3].lower()), names.index(match.group(last)[:3].lower())
            if j <= i:
                return None
            return [names[k].capitalize() for k in range(i, j + 1)]
    return None


def read_claims(prompt: str, texts: list[str] | None = None) -> Claims:
    """The claims of one prompt (see the module docstring); ``texts``: strings the image must show besides
    those the prompt quotes (a batch file's ``text``)."""
    claims = Claims(
        strings=list(dict.fromkeys([*quoted_strings(prompt), *(t for t in texts or [] if t.strip())]))
    )
    kind = chart_kind(prompt)
    title = TITLE.search(prompt)
    if title:
        claims.title = title.group(1).strip()
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for match in RANGE.finditer(prompt):
        labels = expand_range(match)
        tail = RANGE_VALUES.match(prompt[match.end() :])
        if not labels or not tail:
            continue
        text = tail.group("values")
        if re.search(r"\d\s*[kKmMbB]\b", text):
            claims.skipped.append(
                f"'{prompt[match.start() : match.end() + tail.end()]}': values with a k/M suffix"
            )
            continue
        values, decimals, percent = numbers(text)
        span = (match.start(), match.end() + tail.end())
        taken.append(span)
        source = prompt[span[0] : span[1]].strip()
        if len(values) != len(labels):
            claims.skipped.append(f"'{source}': {len(labels)} categories but {len(values)} values")
            continue
        claims.series.append(Series(values, labels, None, percent, kind, source, decimals))
    for run in _pair_runs(prompt, PAIR_LV) + _pair_runs(prompt, PAIR_VL):
        if not free(run["start"], run["end"]):
            continue
        taken.append((run["start"], run["end"]))
        claims.series.append(
            Series(run["values"], run["labels"], None, run["percent"], kind, run["source"], run["decimals"])
        )
    bare_ranges = [
        labels for m in RANGE.finditer(prompt) if (labels := expand_range(m)) and free(m.start(), m.end())
    ]
    for match in NAMED.finditer(prompt):
        start, end = match.start("name"), match.end("values")
        if not free(start, end):
            continue
        words = match.group("name").split()
        cut = max((i + 1 for i, w in enumerate(words) if w.lower() in STOPWORDS), default=0)
        name = (
            " ".join(words[cut:]) or None
        )  # the words after the last stop word: "bars for Q1-Q3 with 2023" -> 2023
        values, decimals, percent = numbers(match.group("values"))
        taken.append((start, end))
        labels = next(
            (r for r in bare_ranges if len(r) == len(values)), None
        )  # "for Q1-Q3 ... 2023: 1, 2, 3"
        source = f"{name}: {match.group('values')}" if name else prompt[start:end].strip()
        claims.series.append(Series(values, labels, name, percent, kind, source, decimals))
    for match in re.finditer(
        rf"(?P<values>{NUM}(?:\s*/\s*{NUM})+)\s*%|(?P<plist>{NUM}%(?:{_SEP}{NUM}%)+)", prompt
    ):
        if not free(match.start(), match.end()):
            continue
        values, decimals, _ = numbers(match.group(0))
        taken.append((match.start(), match.end()))
        claims.series.append(Series(values, None, None, True, kind, match.group(0).strip(), decimals))
    return claims


def _pair_runs(prompt: str, pattern: re.Pattern) -> list[dict[str, Any]]:
    """Runs of two or more "label value" (or "value% label") pairs joined by commas, semicolons or "and"."""
    pairs = []
    position = 0
    while (match := pattern.search(prompt, position)) is not None:
        words = match.group("label").split()
        while words and words[0].lower() in STOPWORDS:
            words.pop(0)
        while words and words[-1].lower() in STOPWORDS:
            words.pop()
        if not words:  # "with 40%": skip the stop words, look again from the number on
            position = match.start("label") + len(match.group("label"))
            if pattern is PAIR_VL:
                position = match.start("label")
            continue
        label = " ".join(words)
        at = match.start("label") + match.group("label").find(label)
        if pattern is PAIR_LV:
            start, end = at, match.end()
        else:
            start, end = match.start(), at + len(label)
        pairs.append(
            {
                "start": start,
                "end": end,
                "label": label,
                "num": match.group("num").lstrip("$"),
                "pct": bool(match.group("pct")),
            }
        )
        position = end
    runs, current = [], []
    for pair in pairs:
        if current and PAIR_SEP.match(prompt[current[-1]["end"] : pair["start"]]):
            current.append(pair)
            continue
        if len(current) >= 2:
            runs.append(current)
        current = [pair]
    if len(current) >= 2:
        runs.append(current)
    out = []
    for run in runs:
        labels = [p["label"] for p in run]
        if len({label.lower() for label in labels}) != len(labels):
            continue  # the same label twice: not a list of categories
        values = [float(p["num"]) for p in run]
        decimals = [len(p["num"].split(".")[1]) if "." in p["num"] else 0 for p in run]
        percent = all(p["pct"] for p in run)
        source = prompt[run[0]["start"] : run[-1]["end"]].strip()
        out.append(
            {
                "start": run[0]["start"],
                "end": run[-1]["end"],
                "labels": labels,
                "values": values,
                "decimals": decimals,
                "percent": percent,
                "source": source,
            }
        )
    return out
