"""`coco bench longtext`: LongText-Bench prompts through the batch driver against the local fake server, every
draft and final scored with the benchmark's formula (local-OCR proxy); the Chinese path counts characters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.batch_helpers import model_args
from support.paths import SHARED, require
from support.programs import ACCEPT, CRASH
from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, html_text_program, text_program

from coco_agent.batch.longtext import (
    FILES,
    BenchDataMissing,
    LongTextScorer,
    bench_summary,
    find_prompts,
    score_missing,
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
    # the wrong one never passes the deterministic checks (its quoted strings are not drawn): it is sent back
    # until max_rounds, and its best draft is still what gets scored
    assert figures["statuses"] == {"accepted": 2, "max_rounds": 1}
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
    assert set(summary["scores"]) == {
        "draft_text_score",
        "final_text_score",
        "first_draft_text_score",
        "best_draft_text_score",
    }
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
    assert scored["scores"] == {
        "draft_text_score": 1.0,
        "final_text_score": round((chars - 2) / chars, 4),
        "first_draft_text_score": 0.0,  # result.json lists no attempts: nothing drawn in round 1
        "best_draft_text_score": 0.0,
        "attempt_text_scores": [],
    }

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


def scripted_rounds(items: list[PromptItem], coder: dict[str, list[str]], critic: dict[str, list[str]]):
    """Answer each prompt's coder and critic requests from its own queue, in order."""
    scripts = {"coder": coder, "critic": critic}
    queues = {(item.id, role): list(scripts[role][item.id]) for role in scripts for item in items}

    def respond(body: dict[str, Any]) -> str:
        messages = body.get("messages", [])
        role = "critic" if any(isinstance(m.get("content"), list) for m in messages) else "coder"
        sent = json.dumps(messages, ensure_ascii=False)
        for item in items:
            if json.dumps(item.prompt[:60], ensure_ascii=False)[1:-1] in sent:
                return queues[item.id, role].pop(0)
        raise AssertionError("a request for no known prompt")

    return respond


def test_bench_longtext_scores_every_attempt(openai_server, tmp_path, capsys) -> None:
    """Round 1 drew the wrong text (sent back by the deterministic checks, without a critic call) or crashed;
    round 2 drew it right: every attempt's draft gets a score, draft_text_score stays the chosen draft's, and
    round 1 shows what the critique loop gained."""
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    require((BENCH / FILES["en"]).is_file(), f"LongText-Bench data missing at {BENCH}")
    items = list(iter_prompts(find_prompts("en"), 2))
    wrong, crashed = items
    right = {item.id: text_program(item.texts) for item in items}
    coder = {wrong.id: [text_program(WRONG), right[wrong.id]], crashed.id: [CRASH, right[crashed.id]]}
    critic = {wrong.id: [ACCEPT], crashed.id: [ACCEPT]}  # round 1's wrong words never reach the critic
    openai_server.respond_with(scripted_rounds(items, coder, critic))
    out = tmp_path / "out"
    args = [
        "bench",
        "longtext",
        "--limit",
        "2",
        "--workers",
        "2",
        "-o",
        str(out),
        "--json",
        "--ocr",
        "rapidocr",
    ]
    code = main([*args, *model_args(openai_server, vlm="server")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    figures = json.loads(lines[-1])
    assert figures["statuses"] == {"accepted": 2}
    assert figures["first_draft_text_score"] <= 0.1  # round 1: wrong words, and a crash (no image: 0)
    assert figures["draft_text_score"] >= 0.9
    assert figures["best_draft_text_score"] == figures["draft_text_score"] == figures["final_text_score"]
    assert figures["by_category"]["sign"]["first_draft_text_score"] == figures["first_draft_text_score"]

    first, second = (json.loads((out / item.id / "result.json").read_text()) for item in items)
    scores = first["scores"]
    assert len(scores["attempt_text_scores"]) == 2
    assert scores["attempt_text_scores"][0] <= 0.1 and scores["attempt_text_scores"][1] >= 0.9
    assert scores["first_draft_text_score"] == scores["attempt_text_scores"][0]
    assert scores["draft_text_score"] == scores["best_draft_text_score"] == scores["attempt_text_scores"][1]
    rounds = first["text_scores"]["attempts"]
    assert [a["round"] for a in rounds] == [1, 2] and rounds[0]["image"] == "attempts/01/draft.png"
    assert "lorem" in rounds[0]["ocr_text"].lower()
    scores = second["scores"]
    assert scores["attempt_text_scores"][0] is None and scores["first_draft_text_score"] == 0.0
    assert second["text_scores"]["attempts"][0]["note"] == "no draft in this round"

    rows = {row["id"]: row for row in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows[wrong.id]["scores"]["attempt_text_scores"] == first["scores"]["attempt_text_scores"]
    assert "first_draft_text_score" in (out / "summary.csv").read_text()

    # a result.json scored before attempts were (no text_scores.attempts) is scored again, without a model call
    path = out / wrong.id / "result.json"
    stale = json.loads(path.read_text())
    del stale["text_scores"]["attempts"]
    write_json(path, stale)
    scorer = LongTextScorer("en", "rapidocr")
    assert not scorer.is_scored(stale)
    assert score_missing(out, find_prompts("en"), 2, scorer) == 1
    assert json.loads(path.read_text())["scores"] == first["scores"]


def test_missing_data_names_the_expected_path(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("COCO_LONGTEXT_BENCH", raising=False)
    with pytest.raises(BenchDataMissing, match=str(tmp_path / "nowhere" / "text_prompts.jsonl")):
        find_prompts("en", tmp_path / "nowhere")
    code = main(
        ["bench", "longtext", "-o", str(tmp_path / "o"), "--data", str(tmp_path / "x"), "--lang", "zh"]
    )
    assert code == 2
    assert f"expected {Path(tmp_path / 'x' / 'text_prompts_zh.jsonl')}" in capsys.readouterr().err


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bench_longtext_with_html_drafts(openai_server, tmp_path, capsys, docker_sandbox, lang) -> None:
    """`--format html`: pages that set each prompt's text verbatim, rendered by Chromium in the Docker pool (the
    image's CJK font for zh), read back by the local OCR: the proxy ceiling of the HTML format."""
    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    require((BENCH / FILES[lang]).is_file(), f"LongText-Bench data missing at {BENCH}")
    items = list(iter_prompts(find_prompts(lang), 2))
    by_start = {item.prompt[:60]: item for item in items}

    def respond(body: dict[str, Any]) -> str:
        sent = json.dumps(body.get("messages", []), ensure_ascii=False)
        for start, item in by_start.items():
            if json.dumps(start, ensure_ascii=False)[1:-1] in sent:
                return html_text_program(item.texts)
        raise AssertionError("a request for no known prompt")

    openai_server.respond_with(respond)
    out = tmp_path / "out"
    args = ["bench", "longtext", "--lang", lang, "--limit", "2", "--format", "html", "-o", str(out), "--json"]
    code = main([*args, "--ocr", "rapidocr", *model_args(openai_server), "--sandbox", "docker"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    figures = json.loads(lines[-1])
    assert figures["statuses"] == {"accepted": 2}
    assert figures["draft_text_score"] >= 0.95, figures  # the OCR reads back what the page set
    for item in items:
        assert (out / item.id / "attempts/01/code.html").is_file()
        assert json.loads((out / item.id / "result.json").read_text())["sandbox"] == "docker"
