"""Local OCR on real renders: PP-OCRv4 (rapidocr) drops spaces between English words; we recover them."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import ImageDraw
from support.paths import require
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, font, render

from coco_agent.scoring.ocr import load_ocr
from coco_agent.scoring.ocr_tesseract import parse_tsv
from coco_agent.scoring.score import score_image
from coco_agent.scoring.text_score import expected_units, normalize
from coco_agent.scoring.word_gaps import recover_spaces, word_gaps

LINES = [
    "FRESH BREWS, EVERY MORNING, EVERY DAY",
    "Locally Roasted Since 1998",
    "CENTRAL PARK - 2 BLOCKS",
    "The quick brown fox jumps over",
]


def matched_words(text: str, lines: list[str]) -> float:
    truth = Counter(expected_units(lines, "en"))
    return sum((truth & Counter(normalize(text).split())).values()) / sum(truth.values())


@pytest.fixture(scope="module")
def rapidocr():
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    return load_ocr("rapidocr")


@pytest.mark.parametrize("size, weight", [(24, "bold"), (20, "normal")])
def test_word_spaces_are_recovered_from_the_pixels(rapidocr, size: int, weight: str) -> None:
    result = rapidocr.read(render(LINES, size, weight))
    assert len(result.lines) == len(LINES)
    # The recogniser itself glues words together ("FRESHBREWS,EVERYMORNING")...
    assert matched_words(result.raw_text, LINES) < 0.5
    # ...and the line geometry alone (no expected words used) puts the spaces back.
    assert matched_words(result.text, LINES) == 1.0
    assert "FRESH BREWS" in result.text and "EVERY MORNING" in result.text
    assert all(len(line.box) == 4 for line in result.lines)


def test_score_image_on_a_render(rapidocr) -> None:
    image = render(LINES)
    scores = score_image(image, "a sign", LINES, clip_model="none")
    text = scores["text"]
    assert text["score"] == 1.0 and text["raw_score"] < 0.5 and text["total"] == 20
    assert "proxy" in text["proxy"] and text["engine"].startswith("rapidocr")
    assert scores["clip"] == {"available": False, "reason": "CLIP is turned off (none)"}
    # Half the words painted over: the score drops accordingly.
    ImageDraw.Draw(image).rectangle((0, 0, 900, 100), fill="white")
    damaged = score_image(image, "a sign", LINES, clip_model="none")["text"]
    assert damaged["score"] < 0.7 and "fresh" in damaged["missing"]


def test_engine_loads_once(rapidocr) -> None:
    assert load_ocr("rapidocr") is rapidocr


def test_tesseract_reads_the_same_render() -> None:
    require(
        shutil.which("tesseract") is not None, "tesseract is not installed (apt-get install tesseract-ocr)"
    )
    result = load_ocr("tesseract").read(render(LINES))
    assert matched_words(result.text, LINES) >= 0.9


def test_tesseract_tsv_is_grouped_into_lines() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "5\t1\t1\t1\t1\t1\t10\t20\t50\t12\t96.0\tFRESH",
        "5\t1\t1\t1\t1\t2\t70\t21\t60\t12\t90.0\tBREWS,",
        "5\t1\t2\t1\t1\t1\t10\t60\t40\t12\t80.0\tDAY",
        "4\t1\t2\t1\t1\t0\t10\t60\t40\t12\t-1\t",
    ]
    lines = parse_tsv("\n".join([header, *rows]))
    assert [line.text for line in lines] == ["FRESH BREWS,", "DAY"]
    assert lines[0].box == [[10, 20], [130, 20], [130, 33], [10, 33]]
    assert lines[0].confidence == 0.93


@pytest.mark.parametrize("weight", ["bold", "normal"])
def test_word_gaps_from_pixels_alone(weight: str) -> None:
    """The geometry step on its own (no OCR engine): glued text gets its spaces back from the line's pixels."""
    line = "EVERY MORNING, EVERY DAY"
    gray = np.asarray(render([line], size=24, weight=weight).convert("L"))
    quad = [[25.0, 25.0], [620.0, 25.0], [620.0, 62.0], [25.0, 62.0]]
    assert len(word_gaps(gray[25:62, 25:620])) == 3
    face = font(24, weight)
    # what PP-OCRv4 reads: the characters without the spaces, each with its x centre
    glued = [
        (ch, 30 + (face.getlength(line[:i]) + face.getlength(line[: i + 1])) / 2) for i, ch in enumerate(line)
    ]
    glued = [(ch, x) for ch, x in glued if ch != " "]
    text = "".join(ch for ch, _ in glued)
    assert recover_spaces(gray, quad, text, [x for _, x in glued]) == line
