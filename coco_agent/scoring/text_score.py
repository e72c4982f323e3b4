"""LongText-Bench text score: how many of the words an image must show can be read in it.

The benchmark's formula: normalise both sides (drop everything but letters, digits and spaces; lowercase for
English), then score = |ground-truth words ∩ OCR words| (a multiset intersection) / |ground-truth words|.
Chinese counts characters instead of words. Over many images, sum matches and totals before dividing
(`aggregate`). With a local OCR engine this is a proxy, not the official number.

Word recovery, second stage: the OCR engine already put back spaces from the pixels (``word_gaps``); what is
still glued ("foxjumps") is split into expected words, and expected words read in pieces ("1 11 1") are joined.
`raw_score` is the score of the OCR text exactly as the engine read it, for comparison.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["en", "zh"]
MAX_JOIN = 8  # at most this many OCR pieces are joined into one expected word
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_QUOTED = re.compile(
    r'"([^"\n]{0,300})"'  # "double"
    r"|“([^”\n]{0,300})”"  # “curly”
    r"|「([^」\n]{0,300})」"  # 「corner」
    r"|『([^』\n]{0,300})』"
    r"|‘([^’\n]{0,300})’"  # ‘curly single’
    r"|(?<![\w'])'([^'\n]{0,300}?)'(?![\w])"  # 'single', not an apostrophe
)


@dataclass
class TextScore:
    """One image's text score against the strings it must show."""

    score: float
    matched: int
    total: int
    mode: Mode
    raw_score: float
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quoted_strings(prompt: str) -> list[str]:
    """The strings a prompt asks to be shown: its quoted parts ("...", “...”, 「...」, '...')."""
    found = []
    for match in _QUOTED.finditer(prompt or ""):
        text = next(group for group in match.groups() if group is not None).strip()
        if text and any(ch.isalnum() for ch in text):
            found.append(text)
    return found


def detect_mode(texts: Iterable[str]) -> Mode:
    """zh (count characters) when the expected text has CJK characters, else en (count words)."""
    return "zh" if any(_CJK.search(text) for text in texts) else "en"


def normalize(text: str, mode: Mode = "en") -> str:
    """Keep letters, digits and (for en) whitespace; NFKC; lowercase for en. zh keeps no spaces."""
    text = unicodedata.normalize("NFKC", text)
    if mode == "zh":
        return "".join(ch for ch in text if ch.isalnum())
    kept = "".join(ch if ch.isalnum() or ch.isspace() else "" for ch in text)
    return " ".join(kept.lower().split())


def expected_units(texts: Iterable[str], mode: Mode) -> list[str]:
    """The ground-truth words (en) or characters (zh)."""
    joined = " ".join(texts)
    return list(normalize(joined, mode)) if mode == "zh" else normalize(joined, mode).split()


def score_text(
    ocr_lines: Iterable[str], expected: Iterable[str], mode: Mode | None = None, raw_lines: Iterable[str] = ()
) -> TextScore:
    """Score OCR lines against the expected strings (LongText-Bench formula, with word recovery)."""
    expected = [text for text in expected if text]
    mode = mode or detect_mode(expected)
    truth = Counter(expected_units(expected, mode))
    lines = list(ocr_lines)
    found = _read_units(lines, truth, mode)
    raw = list(raw_lines) or lines
    raw_found = Counter(_plain_units(raw, mode))
    total = sum(truth.values())
    matched = sum((truth & found).values())
    raw_matched = sum((truth & raw_found).values())
    missing = sorted((truth - found).elements())
    return TextScore(
        score=round(matched / total, 4) if total else 0.0,
        matched=matched,
        total=total,
        mode=mode,
        raw_score=round(raw_matched / total, 4) if total else 0.0,
        missing=missing[:50],
    )


def aggregate(scores: Iterable[TextScore]) -> float:
    """The benchmark's score over many images: total matched over total expected."""
    scores = list(scores)
    total = sum(s.total for s in scores)
    return round(sum(s.matched for s in scores) / total, 4) if total else 0.0


def _plain_units(lines: list[str], mode: Mode) -> list[str]:
    if mode == "zh":
        return [ch for line in lines for ch in normalize(line, mode)]
    return [word for line in lines for word in normalize(line, mode).split()]


def _read_units(lines: list[str], truth: Counter[str], mode: Mode) -> Counter[str]:
    if mode == "zh":
        return Counter(_plain_units(lines, mode))
    vocabulary = set(truth)
    words: list[str] = []
    for line in lines:
        tokens = normalize(line, mode).split()
        words += recover_words(tokens, vocabulary)
    return Counter(words)


def recover_words(tokens: list[str], vocabulary: set[str]) -> list[str]:
    """Join pieces of one line that spell an expected word, then split glued runs into expected words."""
    joined = _join_pieces(tokens, vocabulary)
    out: list[str] = []
    for token in joined:
        out += [token] if token in vocabulary else split_glued(token, vocabulary)
    return out


def _join_pieces(tokens: list[str], vocabulary: set[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for size in range(min(MAX_JOIN, len(tokens) - i), 1, -1):
            group = tokens[i : i + size]
            if "".join(group) in vocabulary and not all(piece in vocabulary for piece in group):
                out.append("".join(group))
                i += size
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def split_glued(token: str, vocabulary: set[str]) -> list[str]:
    """Split `token` into expected words (2+ characters) covering as many characters as possible.

    Characters no expected word explains stay together as leftover pieces. Ties prefer fewer pieces.
    """
    words = {w for w in vocabulary if len(w) >= 2 and w in token}
    if not words:
        return [token]
    longest = max(map(len, words))
    n = len(token)
    # best[i] = (covered characters, -pieces) for token[:i]; back[i] = (start, is_word)
    best: list[tuple[int, int]] = [(0, 0)] + [(-1, 0)] * n
    back: list[tuple[int, bool]] = [(0, False)] * (n + 1)
    for end in range(1, n + 1):
        covered, pieces = best[end - 1]
        best[end], back[end] = (covered, pieces - 1), (end - 1, False)
        for start in range(max(0, end - longest), end - 1):
            if token[start:end] in words:
                candidate = (best[start][0] + end - start, best[start][1] - 1)
                if candidate > best[end]:
                    best[end], back[end] = candidate, (start, True)
    if best[n][0] == 0:
        return [token]
    pieces: list[tuple[str, bool]] = []
    end = n
    while end > 0:
        start, is_word = back[end]
        pieces.append((token[start:end], is_word))
        end = start
    return _merge_leftovers(pieces[::-1])


def _merge_leftovers(pieces: list[tuple[str, bool]]) -> list[str]:
    out: list[str] = []
    leftover = ""
    for text, is_word in pieces:
        if is_word:
            if leftover:
                out.append(leftover)
                leftover = ""
            out.append(text)
        else:
            leftover += text
    if leftover:
        out.append(leftover)
    return out
