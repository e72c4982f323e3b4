"""The critic's structured verdict and a tolerant parser for answers that are not clean JSON."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class Verdict(BaseModel):
    """Does the draft match the request? If not, which specific, fixable problems does it have?"""

    match: bool = Field(description="true only when nothing the request asks for is missing or wrong")
    score: float = Field(description="0 (unrelated) to 10 (perfect match)")
    problems: list[str] = Field(description="specific, fixable problems; empty when it matches")
    summary: str = Field(description="one sentence")
    strategy: Literal["patch", "rewrite"] = Field(
        default="patch",
        description="patch: fix the listed problems in the program; rewrite: it is wrong at its root, start over",
    )
    choice: str | None = Field(
        default=None, description="when several labelled candidates are shown: the label of the best one"
    )


class CodeFix(BaseModel):
    """One problem the visual critic listed, mapped to the lines of the program that cause it."""

    problem: str = Field(description="the problem, as the visual critic listed it")
    lines: str = Field(description="the program's line numbers that cause it, e.g. '12' or '12-14'")
    fix: str = Field(description="what to change on those lines")


class CodeMap(BaseModel):
    """The code critic's answer: every listed problem mapped to lines of the program."""

    fixes: list[CodeFix] = Field(description="one entry per problem")


def parse_verdict(text: str) -> Verdict:
    """Parse a verdict from free text (a JSON object, possibly fenced or surrounded by prose)."""
    match = _OBJECT.search(text or "")
    if not match:
        raise ValueError("no JSON object in the answer")
    try:
        data: Any = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg}") from exc
    if isinstance(data, dict):
        if data.get("strategy") not in ("patch", "rewrite"):
            data.pop("strategy", None)  # an unknown strategy is the default (patch), not a broken verdict
        if data.get("choice") is not None:
            data["choice"] = str(data["choice"])[:20]
        data.setdefault("problems", [])
        data.setdefault("summary", "")
        if "score" not in data and "match" in data:
            data["score"] = 10 if data["match"] else 0
    try:
        return Verdict.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"verdict field {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def parse_code_map(text: str) -> CodeMap:
    """Parse the code critic's map from free text (a JSON object, possibly fenced or surrounded by prose)."""
    match = _OBJECT.search(text or "")
    if not match:
        raise ValueError("no JSON object in the answer")
    try:
        return CodeMap.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"unreadable code map: {str(exc)[:200]}") from exc


def verdict_record(verdict: Verdict, source: str = "critic") -> dict[str, Any]:
    record = verdict.model_dump()
    record["score"] = max(0.0, min(10.0, float(record["score"])))
    record["source"] = source
    return record
