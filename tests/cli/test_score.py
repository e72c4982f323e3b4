"""`coco score`: JSON and human output, CLIP from a local folder or reported unavailable, bad input."""

from __future__ import annotations

import json

from support.paths import require
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, render

from coco_agent.cli import main

SIGN = ["FRESH BREWS, EVERY MORNING", "Quarterly Sales 2025"]
PROMPT = "A coffee sign reading \"FRESH BREWS, EVERY MORNING\" over 'Quarterly Sales 2025'"


def test_score_json_with_local_clip(tmp_path, capsys, tiny_clip_dir) -> None:
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    image = tmp_path / "sign.png"
    render(SIGN).save(image)
    code = main(["score", str(image), "--prompt", PROMPT, "--clip", str(tiny_clip_dir), "--json"])
    scores = json.loads(capsys.readouterr().out)
    assert code == 0
    assert scores["expected_source"] == "quoted in the prompt" and scores["expected_text"] == SIGN
    assert scores["text"]["score"] == 1.0 and "proxy" in scores["text"]["proxy"]
    assert -1 <= scores["clip"]["score"] <= 1 and scores["clip"]["model"] == str(tiny_clip_dir)


def test_score_text_output_without_clip_weights(tmp_path, capsys) -> None:
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    image = tmp_path / "sign.png"
    render(SIGN).save(image)
    texts = ["--text", "EVERY MORNING", "--text", "EVERY DAY"]
    code = main(["score", str(image), "--prompt", "a sign", *texts, "--clip", "none"])
    out = capsys.readouterr().out
    assert code == 0
    # "every" is expected twice but shown once; "day" is not shown: 2 of 4 words
    assert "text accuracy: 0.500  (2/4 words" in out and "missing: day every" in out
    assert "local-OCR proxy" in out and "CLIP score: unavailable (CLIP is turned off (none))" in out


def test_unreadable_image_exits_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert main(["score", str(bad), "--prompt", "x"]) == 2
    assert "cannot read image" in capsys.readouterr().err
