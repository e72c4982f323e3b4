"""`coco bench longtext`: LongText-Bench prompts through the batch driver against the local fake server, every
draft and final scored with the benchmark's formula (local-OCR proxy); the Chinese path counts characters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import model_args
from conftest import SHARED, require
from PIL import Image
from text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, text_program

from coco_agent.batch.longtext import (
    FILES,
    BenchDataMissing,
    LongTextScorer,
    bench_summary,
    find_prompts,
)
from coco_agent.batch.prompts_file import PromptItem, iter_prompts
from coco_agent.cli import main
from coco_agent.runs import write_json
from coco_agent.scoring import ocr as ocr_module
from coco_agent.scoring.ocr import OcrLine, OcrResult

BENCH = SHARED / "benchmarks" / "longtext_bench"
WRONG = ["LOREM IPSUM DOLOR", "Quick Brown Fox"]


def responder(items: list[PromptItem], wrong: set[str]):
    """Answer each coder request with a drawing of its prompt's text (or of the wrong text)."""

    def respond(body: dict[str, Any]) -> str:
        sent = " ".join(
            m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
            for m in body.get("messages", [])
        )
        for item in items:
            if item.prompt[:60] in sent:
                return text_program(WRONG if item.id in wrong else item.texts)
        raise AssertionError("a request for no known prompt")

    return respond


def test_bench_longtext_scores_drafts_and_finals(openai_server, tmp_path, capsys) -> None:
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    require((BENCH / FILES["en"]).is_file(), f"LongText-Bench data missing at {BENCH}")
    items = list(iter_prompts(find_prompts("en"), 3))
    openai_server.respond_with(responder(items, wrong={items[2].id}))
    out = tmp_path / "out"
    args = ["bench", "longtext", "--limit", "3", "--workers", "2", "-o", str(out), "--json"]
    code = main([*args, *model_args(openai_server), "--ocr", "rapidocr"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    figures = json.loads(lines[-1])
    assert figures["event"] == "bench" and figures["n"] == 3 and figures["official"] is False
    assert "rapidocr" in figures["ocr"] and "proxy" in figures["proxy"]
    assert set(figures["by_category"]) == {"sign"} and set(figures["by_length"]) == {"short"}
    assert figures["by_category"]["sign"]["n"] == 3
    assert figures["statuses"] == {"accepted": 3}
    assert 0.4 < figures["draft_text_score"] < 0.85  # two right, one wrong (sums before dividing)
    assert figures["final_text_score"] == figures["draft_text_score"]  # no refiner: the final is the draft

    results = {item.id: json.loads((out / item.id / "result.json").read_text()) for item in items}
    for item in items[:2]:  # drawn right: high
        scores = results[item.id]["scores"]
        assert scores["draft_text_score"] >= 0.9 and scores["final_text_score"] >= 0.9, results[item.id]
    wrong = results[items[2].id]
    assert wrong["scores"]["draft_text_score"] <= 0.1 and wrong["scores"]["final_text_score"] <= 0.1
    assert "welcome" in wrong["text_scores"]["draft"]["missing"]
    assert "lorem" in wrong["text_scores"]["draft"]["ocr_text"].lower()
    assert wrong["text_scores"]["proxy"].startswith("local-OCR proxy")

    summary = json.loads((out / "summary.json").read_text())  # the batch summary picks the scores up
    assert set(summary["scores"]) == {"draft_text_score", "final_text_score"}
    assert "draft_text_score" in (out / "summary.csv").read_text()

    # a rerun scores nothing again and calls no model; the table names the proxy and splits the groups
    calls = len(openai_server.chat_requests)
    assert main([*args[:-1], *model_args(openai_server), "--ocr", "rapidocr"]) == 0
    table = capsys.readouterr().out
    assert len(openai_server.chat_requests) == calls
    assert "local-OCR proxy" in table and "category sign" in table and "length short" in table


class ScriptedOcr:
    """An OCR engine that 'reads' a fixed text per image width (the formula is under test, not the engine)."""

    name = label = "scripted"

    def __init__(self, by_width: dict[int, str]) -> None:
        self.by_width = by_width

    def read(self, image: Image.Image) -> OcrResult:
        text = self.by_width[image.width]
        return OcrResult("scripted", [OcrLine(text, [[0, 0]] * 4, 1.0, text)])


def test_chinese_counts_characters_through_the_bench(tmp_path, monkeypatch) -> None:
    """zh: draft read in full, final missing two characters; digits-only text still counts characters."""
    require((BENCH / FILES["zh"]).is_file(), f"LongText-Bench data missing at {BENCH}")
    prompts = find_prompts("zh")
    item = next(iter_prompts(prompts, 1))  # 每日新鲜烘焙 | 本地烘焙，始于1998 | 中央公园 - 2公里
    read = "".join(item.texts)
    engine = ScriptedOcr({100: read, 120: read.replace("新鲜", "")})
    monkeypatch.setattr(ocr_module, "load_ocr", lambda name="auto": engine)
    run_dir = tmp_path / "out" / item.id
    run_dir.mkdir(parents=True)
    Image.new("RGB", (100, 40), "white").save(run_dir / "draft.png")
    Image.new("RGB", (120, 40), "white").save(run_dir / "final.png")
    result = {"status": "accepted", "paths": {"draft": "draft.png", "final": "final.png"}}

    scored = LongTextScorer("zh", "auto").score(item, run_dir, result)
    draft, final = scored["text_scores"]["draft"], scored["text_scores"]["final"]
    chars = len("每日新鲜烘焙本地烘焙始于1998中央公园2公里")
    assert draft["mode"] == "zh" and (draft["matched"], draft["total"]) == (chars, chars)
    assert (final["matched"], final["total"]) == (chars - 2, chars)
    assert scored["scores"] == {"draft_text_score": 1.0, "final_text_score": round((chars - 2) / chars, 4)}

    write_json(run_dir / "result.json", scored)
    figures = bench_summary(tmp_path / "out", prompts, 2, "zh", "auto", "scripted")
    # the second prompt never ran: 0 of its characters, summed before dividing
    second = next(p for p in iter_prompts(prompts, 2) if p.id != item.id)
    total = chars + len("".join(second.texts))
    assert figures["n"] == 2 and figures["units"] == total
    assert figures["draft_text_score"] == round(chars / total, 4)
    assert figures["by_category"]["sign"]["final_text_score"] == round((chars - 2) / total, 4)

    digits = PromptItem(id="d", prompt="", line=1, index=0, texts=["2024"])
    engine.by_width[100] = "2025"
    counted = LongTextScorer("zh", "auto").score(digits, run_dir, result)["text_scores"]["draft"]
    assert (counted["matched"], counted["total"]) == (3, 4)  # characters, not one word


def test_missing_data_names_the_expected_path(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("COCO_LONGTEXT_BENCH", raising=False)
    with pytest.raises(BenchDataMissing, match=str(tmp_path / "nowhere" / "text_prompts.jsonl")):
        find_prompts("en", tmp_path / "nowhere")
    code = main(
        ["bench", "longtext", "-o", str(tmp_path / "o"), "--data", str(tmp_path / "x"), "--lang", "zh"]
    )
    assert code == 2
    assert f"expected {Path(tmp_path / 'x' / 'text_prompts_zh.jsonl')}" in capsys.readouterr().err
