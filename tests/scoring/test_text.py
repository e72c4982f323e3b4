"""The LongText-Bench text-score formula, expected strings from prompts, and vocabulary-guided word recovery."""

from __future__ import annotations

import json

import pytest
from support.paths import SHARED

from coco_agent.scoring.text_score import (
    aggregate,
    detect_mode,
    expected_units,
    normalize,
    quoted_strings,
    recover_words,
    score_text,
    split_glued,
)

FRESH = ["FRESH BREWS, EVERY MORNING, EVERY DAY", "Locally Roasted Since 1998", "CENTRAL PARK - 2 BLOCKS"]


def test_normalisation_follows_the_benchmark() -> None:
    assert normalize("FRESH BREWS, EVERY-DAY!  Café") == "fresh brews everyday café"
    assert normalize("中央公园 - 2公里", "zh") == "中央公园2公里"
    assert normalize("ＦＵＬＬ，width") == "fullwidth"  # NFKC folds full-width forms PP-OCR sometimes emits
    assert expected_units(["EVERY DAY, EVERY day"], "en") == ["every", "day", "every", "day"]
    assert expected_units(["每日 新鲜"], "zh") == ["每", "日", "新", "鲜"]


def test_score_is_a_multiset_intersection_over_ground_truth_words() -> None:
    result = score_text(["fresh brews every morning every"], ["FRESH BREWS, EVERY MORNING, EVERY DAY"])
    assert (result.matched, result.total, result.score) == (5, 6, 0.8333)
    assert result.missing == ["day"]
    # an extra copy of a word in the image earns nothing; a missing copy costs one
    once = score_text(["every day"], ["every day every day"])
    assert (once.matched, once.total) == (2, 4)


def test_chinese_counts_characters() -> None:
    assert detect_mode(["每日新鲜烘焙"]) == "zh" and detect_mode(FRESH) == "en"
    result = score_text(["每日新鮮烘焙"], ["每日新鲜烘焙"])
    assert result.mode == "zh" and (result.matched, result.total) == (5, 6)


def test_aggregate_sums_before_dividing() -> None:
    scores = [score_text(["a b"], ["a b"]), score_text([""], ["c d e f g h"])]
    assert aggregate(scores) == round(2 / 8, 4)


def test_glued_words_are_split_into_expected_words() -> None:
    vocabulary = {"fresh", "brews", "every", "morning", "day"}
    assert split_glued("freshbrewseverymorning", vocabulary) == ["fresh", "brews", "every", "morning"]
    assert split_glued("everymornlng", vocabulary) == ["every", "mornlng"]  # a misread stays a leftover
    assert split_glued("xyz", vocabulary) == ["xyz"]
    assert split_glued("2blocks", {"2", "blocks"}) == ["2", "blocks"]


def test_pieces_that_spell_an_expected_word_are_joined() -> None:
    assert recover_words(["with", "1", "11", "1", "lilies"], {"with", "1111", "lilies"}) == [
        "with",
        "1111",
        "lilies",
    ]
    # two real words are never glued together
    assert recover_words(["every", "day"], {"every", "day", "everyday"}) == ["every", "day"]


def test_raw_score_shows_what_recovery_added() -> None:
    result = score_text(["FRESHBREWS,EVERYMORNING"], ["FRESH BREWS, EVERY MORNING"])
    assert result.raw_score == 0.0 and result.score == 1.0


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4", ["Quarterly Sales 2025"]),
        ('A sign that reads "OPEN 24/7" and "No Parking"', ["OPEN 24/7", "No Parking"]),
        ("海报上写着“每日新鲜烘焙”和「本地烘焙」", ["每日新鲜烘焙", "本地烘焙"]),
        ("The cat's toy and the dog's bone, no quotes here", []),
        ("A slide with ‘Q3 Review’ on top", ["Q3 Review"]),
        ('an empty quote "" and a symbol "-"', []),
    ],
)
def test_quoted_strings(prompt: str, expected: list[str]) -> None:
    assert quoted_strings(prompt) == expected


def test_longtext_bench_prompts_quote_their_ground_truth() -> None:
    """On the benchmark's own English prompts, the quoted strings hold (nearly) every ground-truth word."""
    path = SHARED / "benchmarks" / "longtext_bench" / "text_prompts.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:40]]
    scores = [score_text(quoted_strings(row["prompt"]), row["text"]) for row in rows]
    assert aggregate(scores) > 0.95
