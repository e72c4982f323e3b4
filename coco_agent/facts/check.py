"""The prompt's claims (claims.py) against the facts the sandbox reported: precise problems, what was checked,
what was skipped. Conservative: a claim is judged only against a drawn series it can be matched with for
certain (by its category labels, its series name, or as the only series of its length), and says so.

Result (``check_facts``): ``{"ok", "available", "problems", "checked", "skipped", "quoted": {"total",
"drawn"}}``; ``problems`` read like feedback: "bar 'Q3' is 105; the prompt says 150".
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from typing import Any

from coco_agent.facts.claims import Claims, Series, read_claims

CLOSE = 0.75  # a drawn text this similar to a quoted string is that string, misspelled
MAX_PROBLEMS = 12
PIE_TOLERANCE = 0.6  # percentage points a wedge may differ (angles drawn from rounded values)


@dataclass
class Drawn:
    """One data series the program drew, in a uniform shape."""

    kind: str  # bar, line, scatter, pie
    axes: int | None
    label: str | None
    values: list[float | None]
    categories: list[str | None]

    def name(self) -> str:
        where = f" in plot {self.axes + 1}" if self.axes is not None and self.axes > 0 else ""
        return (f"the {self.kind} series '{self.label}'" if self.label else f"the {self.kind} series") + where


def norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def fold(text: str) -> str:
    return norm(text).casefold()


def label_key(text: str) -> str:
    """A category label as compared: case-folded, and a number by its value (a tick "2020.0" is "2020")."""
    folded = fold(text)
    try:
        number = float(folded.replace(",", "")) if folded else None
    except ValueError:
        return folded
    return f"{number:g}" if number is not None and abs(number) < 1e15 else folded


def shown(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else str(value)


def close(drawn: float | None, claimed: float, decimals: int, percent: bool = False) -> bool:
    if drawn is None:
        return False
    tolerance = PIE_TOLERANCE if percent else max(0.5 * 10**-decimals, 0.005 * abs(claimed))
    return abs(drawn - claimed) <= tolerance


def series_of(facts: dict[str, Any]) -> list[Drawn]:
    """Every series in the facts: bars, lines, scatters and pies (wedges as percentages)."""
    found: list[Drawn] = []
    for ax in facts.get("axes") or []:
        index = ax.get("index")
        for bars in ax.get("bars") or []:
            found.append(Drawn("bar", index, bars.get("label"), bars["values"], bars["categories"]))
        for line in ax.get("lines") or []:
            found.append(Drawn("line", index, line.get("label"), line["y"], line["categories"]))
        for points in ax.get("scatters") or []:
            found.append(Drawn("scatter", index, points.get("label"), points["y"], [None] * len(points["y"])))
        legend = ax.get("legend") or []
        for pie in ax.get("pies") or []:
            found.append(_pie(pie, index, legend))
    for pie in facts.get("pies") or []:
        found.append(_pie(pie, None, []))
    return found


def _pie(pie: dict[str, Any], axes: int | None, legend: list[str]) -> Drawn:
    labels = list(pie.get("labels") or [])
    if not any(labels) and len(legend) == len(labels):
        labels = list(legend)  # pie(values) + legend(labels): the legend names the wedges in order
    values = [None if f is None else 100.0 * f for f in pie["fractions"]]
    return Drawn("pie", axes, None, values, labels)


def check_facts(
    prompt: str, facts: dict[str, Any] | None, claims: Claims | None = None, texts: list[str] | None = None
) -> dict[str, Any]:
    """Check what ``prompt`` states (and the strings ``texts`` the image must show) against ``facts`` (None:
    nothing to check against)."""
    claims = claims if claims is not None else read_claims(prompt, texts)
    result: dict[str, Any] = {
        "ok": True,
        "available": facts is not None,
        "problems": [],
        "checked": [],
        "skipped": list(claims.skipped),
        "quoted": {"total": len(claims.strings), "drawn": 0},
    }
    if claims.empty():
        result["skipped"].append("the prompt states no numbers, labels or quoted strings this check can read")
        return result
    if facts is None:
        result["skipped"].append("the sandbox reported no facts for this draft: nothing checked")
        return result
    texts = [norm(t["text"]) for t in facts.get("texts") or []]
    _check_strings(claims, facts, texts, result)
    _check_series(claims, series_of(facts), result)
    result["problems"] = result["problems"][:MAX_PROBLEMS]
    result["ok"] = not result["problems"]
    return result


def _check_strings(claims: Claims, facts: dict[str, Any], texts: list[str], result: dict[str, Any]) -> None:
    if not texts:
        if claims.strings or claims.title:
            result["skipped"].append(
                f"no text in the {facts.get('renderer')} facts: quoted strings not checked"
            )
        return
    everything = " ".join(texts)
    strings = list(dict.fromkeys(claims.strings))
    if claims.title and claims.title not in strings:
        strings.append(claims.title)
    titles = [norm(t["text"]) for t in facts.get("texts") or [] if t.get("role") in ("title", "suptitle")]
    if facts.get("title"):
        titles.append(norm(facts["title"]))
    for wanted in strings:
        want = norm(wanted)
        if any(want in t for t in texts) or want in everything:
            result["quoted"]["drawn"] += int(wanted in claims.strings)
            result["checked"].append(f"'{want}' is drawn")
            continue
        if any(fold(want) in fold(t) for t in texts):
            drawn = next(t for t in texts if fold(want) in fold(t))
            result["problems"].append(f"'{want}' is drawn as '{drawn}': write it with the prompt's capitals")
            continue
        is_title = wanted == claims.title
        pool = titles if is_title and titles else texts
        best = max(pool, key=lambda t: difflib.SequenceMatcher(None, fold(t), fold(want)).ratio())
        ratio = difflib.SequenceMatcher(None, fold(best), fold(want)).ratio()
        if is_title and titles and ratio >= 0.5:
            result["problems"].append(f"the title reads '{best}'; the prompt says '{want}'")
        elif ratio >= CLOSE:
            result["problems"].append(f"'{best}' is drawn where the prompt says '{want}' (misspelled)")
        else:
            what = "title" if is_title else "text"
            result["problems"].append(f"the {what} '{want}' the prompt asks for is not drawn")


def _check_series(claims: Claims, drawn: list[Drawn], result: dict[str, Any]) -> None:
    if not claims.series:
        return
    if not drawn:
        for claim in claims.series:
            result["skipped"].append(f"'{claim.source}': the program drew no bars, lines, points or wedges")
        return
    used: set[int] = set()
    pending: list[Series] = []
    for claim in claims.series:
        match = _by_labels(claim, drawn, used) if claim.labels else None
        if match is None and claim.name:
            match = _by_name(claim, drawn, used)
        if match is None:
            match = _by_values(claim, drawn, used)
        if match is None:
            pending.append(claim)
            continue
        used.add(match)
        _compare(claim, drawn[match], result)
    for claim in pending:
        same = [
            i
            for i, d in enumerate(drawn)
            if i not in used and len(d.values) == len(claim.values) and _kind_ok(claim, d)
        ]
        if len(same) == 1:
            used.add(same[0])
            _compare(claim, drawn[same[0]], result)
        elif not same and any(_kind_ok(claim, d) for d in drawn):
            what = f"series '{claim.name}'" if claim.name else "the series"
            result["problems"].append(
                f"{what} of the prompt ({claim.source}) is missing: no drawn series has its "
                f"{len(claim.values)} values"
            )
        else:
            result["skipped"].append(f"'{claim.source}': no drawn series can be matched with it for certain")


def _kind_ok(claim: Series, drawn: Drawn) -> bool:
    """A pie claim compares with pies only; a pie compares with percentages or with a claim of no kind."""
    if claim.chart == "pie":
        return drawn.kind == "pie"
    if drawn.kind == "pie":
        return claim.percent or claim.chart is None
    return True


def _by_labels(claim: Series, drawn: list[Drawn], used: set[int]) -> int | None:
    """The drawn series showing all the claim's category labels (the one of the claim's name, when named)."""
    wanted = {label_key(label) for label in claim.labels or []}
    fits = [
        i
        for i, d in enumerate(drawn)
        if i not in used and wanted <= {label_key(c) for c in d.categories if c} and _kind_ok(claim, d)
    ]
    if claim.name:
        named = [i for i in fits if drawn[i].label and fold(drawn[i].label) == fold(claim.name)]
        if named:
            return named[0]
        if len(fits) > 1:
            return (
                None  # several series show these categories and none has the claim's name: by name or values
            )
    return fits[0] if fits else None


def _by_name(claim: Series, drawn: list[Drawn], used: set[int]) -> int | None:
    for i, d in enumerate(drawn):
        if i not in used and d.label and fold(d.label) == fold(claim.name or ""):
            return i
    return None


def _by_values(claim: Series, drawn: list[Drawn], used: set[int]) -> int | None:
    for i, d in enumerate(drawn):
        if i in used or len(d.values) != len(claim.values) or not _kind_ok(claim, d):
            continue
        if all(
            close(v, c, dec, d.kind == "pie")
            for v, c, dec in zip(_as_drawn(claim, d), claim.values, _decimals(claim), strict=True)
        ):
            return i
    return None


def _decimals(claim: Series) -> list[int]:
    return claim.decimals if len(claim.decimals) == len(claim.values) else [0] * len(claim.values)


def _as_drawn(claim: Series, drawn: Drawn) -> list[float | None]:
    """The drawn values in the claim's units: a pie's wedges as percentages compare with percentages, or with
    the claim's values scaled to 100 when the prompt gives amounts."""
    if drawn.kind != "pie" or claim.percent:
        return list(drawn.values)
    total = sum(claim.values)
    if not total:
        return list(drawn.values)
    return [None if v is None else v * total / 100.0 for v in drawn.values]


def _compare(claim: Series, drawn: Drawn, result: dict[str, Any]) -> None:
    """Value by value: by category label when the claim has labels the series shows, else in order."""
    unit = "%" if (claim.percent or drawn.kind == "pie") else ""
    element = {"bar": "bar", "line": "point", "scatter": "point", "pie": "wedge"}[drawn.kind]
    values = _as_drawn(claim, drawn)
    decimals = _decimals(claim)
    problems: list[str] = []
    pairs: list[tuple[str, float | None, float, int]] = []
    if claim.labels and {label_key(x) for x in claim.labels} <= {label_key(c) for c in drawn.categories if c}:
        index = {}
        for position, category in enumerate(drawn.categories):
            if category:
                index.setdefault(label_key(category), position)
        for label, value, dec in zip(claim.labels, claim.values, decimals, strict=True):
            pairs.append((label, values[index[label_key(label)]], value, dec))
        how = "by label"
    else:
        if len(values) != len(claim.values):
            result["problems"].append(
                f"{drawn.name()} has {len(values)} values; the prompt gives {len(claim.values)} ({claim.source})"
            )
            return
        names = claim.labels or [None] * len(claim.values)
        for position, (value, dec) in enumerate(zip(claim.values, decimals, strict=True)):
            pairs.append((names[position] or f"#{position + 1}", values[position], value, dec))
        how = "in order"
        if claim.labels and all(drawn.categories):
            problems.append(
                f"{drawn.name()} labels its {element}s {', '.join(map(str, drawn.categories))}; the prompt says "
                f"{', '.join(claim.labels)}"
            )
    for label, got, want, dec in pairs:
        if not close(got, want, dec, unit == "%" and drawn.kind == "pie"):
            got_text = (
                "missing"
                if got is None
                else f"{shown(round(got, max(dec, 1) if unit else max(dec, 2)))}{unit}"
            )
            problems.append(f"{element} '{label}' is {got_text}; the prompt says {shown(want)}{unit}")
    swapped = _swapped(pairs)
    if swapped:
        problems.insert(0, f"the {element}s '{swapped[0]}' and '{swapped[1]}' are swapped")
    if problems:
        result["problems"].extend(problems)
    else:
        result["checked"].append(f"'{claim.source}' matches {drawn.name()} ({how})")


def _swapped(pairs: list[tuple[str, float | None, float, int]]) -> tuple[str, str] | None:
    """Two labels whose drawn values are each other's claimed values (and everything else right)."""
    wrong = [p for p in pairs if p[1] is None or not close(p[1], p[2], p[3], True)]
    if len(wrong) != 2:
        return None
    (a, got_a, want_a, dec_a), (b, got_b, want_b, dec_b) = wrong
    if close(got_a, want_b, dec_b, True) and close(got_b, want_a, dec_a, True):
        return a, b
    return None
