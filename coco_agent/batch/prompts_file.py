"""Prompts files for `coco batch`, read as a stream: .txt (one prompt a line), .jsonl, .csv.

- ``.txt``: every non-blank line is a prompt; its id is its line number, zero-padded (``000042``).
- ``.jsonl``: one object a line with ``prompt``; optional ``id`` or ``prompt_id``; optional ``text`` (a string or
  a list of strings the image must show); other fields are kept as ``meta``. LongText-Bench files load as they are.
- ``.csv``: a header row with a ``prompt`` column; optional ``id`` / ``prompt_id`` and ``text`` columns.

Ids become folder names, so they must be safe: letters, digits, ``.``, ``_``, ``-``, starting with a letter or a
digit, at most 100 characters. Ids are unique, ignoring case (case-insensitive file systems). Every error names
the file and the line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coco_agent.errors import PromptsFileError
from coco_agent.rundir import BATCH_FILES

SUFFIXES = (".txt", ".jsonl", ".csv")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RESERVED_IDS = set(BATCH_FILES)
ID_KEYS = ("id", "prompt_id")


@dataclass(frozen=True)
class PromptItem:
    """One prompt of a batch: its id (a folder name), text, the strings the image must show, where it came from."""

    id: str
    prompt: str
    line: int
    index: int
    texts: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def iter_prompts(path: str | Path, limit: int | None = None) -> Iterator[PromptItem]:
    """Yield the prompts of ``path`` one by one (the file is never held in memory); stop after ``limit``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise PromptsFileError(f"{path}: unknown prompts file type {suffix!r}; use .txt, .jsonl or .csv")
    if not path.is_file():
        raise PromptsFileError(f"{path}: no such file")
    rows = {".txt": _txt_rows, ".jsonl": _jsonl_rows, ".csv": _csv_rows}[suffix](path)
    seen: dict[bytes, int] = {}
    count = 0
    last_line = 0
    for line, raw_id, prompt, texts, meta in rows:
        last_line = line
        if prompt is None:  # a blank line
            continue
        if limit is not None and count >= limit:
            return
        item_id = check_id(raw_id, path, line)
        key = hashlib.blake2b(item_id.lower().encode(), digest_size=8).digest()
        if key in seen:
            raise PromptsFileError(
                f"{path}:{line}: duplicate id {item_id!r} (first used on line {seen[key]})"
            )
        seen[key] = line
        yield PromptItem(id=item_id, prompt=prompt, line=line, index=count, texts=texts, meta=meta)
        count += 1
    if count == 0:
        where = "the file is empty" if last_line == 0 else f"{last_line} line(s), none with a prompt"
        raise PromptsFileError(f"{path}:{max(last_line, 1)}: no prompts ({where})")


def count_prompts(path: str | Path, limit: int | None = None) -> int:
    """Check the whole file (or its first ``limit`` prompts) and count them; raises PromptsFileError."""
    return sum(1 for _ in iter_prompts(path, limit))


def check_id(raw: Any, path: Path, line: int) -> str:
    """The id as a safe folder name, or PromptsFileError naming the line."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise PromptsFileError(f"{path}:{line}: the id must be a string or an integer, got {raw!r}")
    text = str(raw).strip()
    if not SAFE_ID.fullmatch(text) or text.lower() in RESERVED_IDS:
        raise PromptsFileError(
            f"{path}:{line}: id {text[:120]!r} cannot be a folder name; use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 100 characters"
        )
    return text


Row = tuple[int, Any, str | None, list[str], dict[str, Any]]  # prompt None: a blank line


def _line_id(line: int) -> str:
    return f"{line:06d}"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs, decoded line by line so that an encoding error names its line."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise PromptsFileError(f"{path}:{number}: not UTF-8 text ({exc.reason})") from exc
            yield number, text


def _txt_rows(path: Path) -> Iterator[Row]:
    for line, text in _lines(path):
        prompt = text.strip()
        yield line, _line_id(line), prompt or None, [], {}


def _jsonl_rows(path: Path) -> Iterator[Row]:
    for line, text in _lines(path):
        if not text.strip():
            yield line, None, None, [], {}
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise PromptsFileError(f"{path}:{line}: not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise PromptsFileError(f"{path}:{line}: expected a JSON object with a 'prompt' field")
        yield _record_row(path, line, record)


def _csv_rows(path: Path) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 64 * 1024 * 1024))
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            try:
                header = reader.fieldnames
            except csv.Error as exc:
                raise PromptsFileError(f"{path}:1: unreadable CSV header ({exc})") from exc
            if not header:
                return
            if "prompt" not in header:
                raise PromptsFileError(f"{path}:1: the CSV header has no 'prompt' column (found {header})")
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise PromptsFileError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from exc
                if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
                    yield reader.line_num, None, None, [], {}
                    continue
                if None in record:
                    raise PromptsFileError(f"{path}:{reader.line_num}: more fields than the header names")
                yield _record_row(path, reader.line_num, {k: v for k, v in record.items() if v != ""})
    except UnicodeDecodeError as exc:
        raise PromptsFileError(f"{path}:{reader.line_num + 1}: not UTF-8 text at or after this line") from exc


def _record_row(path: Path, line: int, record: dict[str, Any]) -> Row:
    prompt = record.get("prompt")
    if not isinstance(prompt, str):
        raise PromptsFileError(f"{path}:{line}: 'prompt' is missing or not a string")
    raw_id = next((record[k] for k in ID_KEYS if record.get(k) is not None), _line_id(line))
    texts = _texts(record.get("text"), path, line)
    meta = {k: v for k, v in record.items() if k not in ("prompt", "text", *ID_KEYS)}
    return line, raw_id, prompt, texts, meta


def _texts(value: Any, path: Path, line: int) -> list[str]:
    """``text``: a string, a list of strings, or (CSV) a JSON list in a string."""
    if value is None:
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise PromptsFileError(f"{path}:{line}: 'text' must be a string or a list of strings")
