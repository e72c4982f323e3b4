"""The price table: US dollars per million input and output tokens, per ``provider:model`` label.

The shipped table (``prices.json`` beside this module) covers common hosted models at their published standard
rates. A price file (``--prices FILE``, or ``COCO_PRICES=FILE``) in the same format adds or replaces entries;
its keys may be patterns (``"hf:*": {"input": 0, "output": 0}`` prices every local model at zero). A model no
entry names is "price unknown": its tokens are counted, its dollars are not, and nothing is guessed. A label with
a server address (``openai:NAME@http://...``: a model served by someone other than the provider) matches only
an entry that names it, never the provider's price. Unparsable files raise PriceFileError naming the fix.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from coco_agent.errors import PriceFileError
from coco_agent.ledger.usage import Usage

SHIPPED = Path(__file__).with_name("prices.json")
ENV_VAR = "COCO_PRICES"  # read by coco_agent/environment.py into RunContext.prices
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens, and where the entry came from."""

    input: float
    output: float
    source: str

    def cost(self, usage: Usage) -> float | None:
        """Dollars for ``usage``; None when its tokens are unknown."""
        if not usage.known:
            return None
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6  # type: ignore[operator]


@dataclass(frozen=True)
class PriceTable:
    """Exact entries and pattern entries (user files only); user entries win over shipped ones."""

    exact: dict[str, Price] = field(default_factory=dict)
    patterns: tuple[tuple[str, Price], ...] = ()
    files: tuple[str, ...] = ()

    def lookup(self, label: str | None) -> Price | None:
        """The price of a model label (``describe_model``'s), or None when no entry names it."""
        if not label:
            return None
        if label in self.exact:
            return self.exact[label]
        for pattern, price in self.patterns:
            if fnmatch.fnmatchcase(label, pattern):
                return price
        return None


def load_prices(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The shipped table with the price file ``path`` over it (``RunContext.prices``: --prices FILE, or
    COCO_PRICES as coco_agent/environment.py reads it). PriceFileError when a file cannot be used."""
    return _load(str(path).strip() if path else None)


@cache
def _load(path: str | None) -> PriceTable:
    shipped = _entries(_read(SHIPPED, "the shipped price table"), str(SHIPPED))
    exact = {key: price for key, price in shipped.items()}
    patterns: list[tuple[str, Price]] = []
    files = [str(SHIPPED)]
    if path:
        where = f"price file {path}"
        for key, price in _entries(_read(Path(path), where), where).items():
            if any(ch in key for ch in "*?["):
                patterns.append((key, price))
            else:
                exact[key] = price
        files.append(str(path))
    return PriceTable(exact=exact, patterns=tuple(patterns), files=tuple(files))


HINT = f"; fix it, or unset {ENV_VAR} / drop --prices to use the shipped table"


def _read(path: Path, where: str) -> Any:
    hint = HINT
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PriceFileError(f"{where} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}{hint}")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PriceFileError(f"{where} does not exist{hint}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"{where} cannot be read: {exc}{hint}") from exc
    except json.JSONDecodeError as exc:
        raise PriceFileError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}){hint}"
        ) from exc


def _entries(data: Any, where: str) -> dict[str, Price]:
    """``{"models": {"provider:model": {"input": $/Mtok, "output": $/Mtok}}}`` validated."""
    try:
        return _validated(data, where)
    except PriceFileError as exc:
        raise PriceFileError(f"{exc}{HINT}") from None


def _validated(data: Any, where: str) -> dict[str, Price]:
    example = '{"models": {"openai:gpt-4.1-mini": {"input": 0.4, "output": 1.6}}}'
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise PriceFileError(f'{where}: expected a JSON object with a "models" object, e.g. {example}')
    prices: dict[str, Price] = {}
    for key, entry in data["models"].items():
        if not isinstance(entry, dict):
            raise PriceFileError(f'{where}: {key!r} must be an object like {{"input": 0.4, "output": 1.6}}')
        values = []
        for side in ("input", "output"):
            value = entry.get(side)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PriceFileError(
                    f"{where}: {key!r} needs {side!r} as a number of dollars per million tokens, got {value!r}"
                )
            if value < 0:
                raise PriceFileError(f"{where}: {key!r} has a negative {side} price ({value})")
            values.append(float(value))
        prices[str(key)] = Price(values[0], values[1], where)
    return prices


def expected_label(spec: Any, base_url: str | None = None) -> str | None:
    """The label ``describe_model`` will give a model string (for checks before any model is built): the
    string itself, with ``@URL`` for an openai model served from another address; None for instances."""
    if not isinstance(spec, str) or not spec.strip() or spec.strip().lower() == "none":
        return None
    spec = spec.strip()
    url = base_url
    if spec.startswith("openai:") and url and "api.openai.com" not in url:
        return f"{spec}@{url}"
    return spec
