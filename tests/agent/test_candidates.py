"""`--candidates N`: the real langchain-openai client against the local server (one request with n=N, or topped
up with parallel requests when the server ignores n), the candidates rendered in parallel by LangGraph Send
tasks, ranked deterministically (execution, checks, the facts check), the critic choosing among the shortlist
from one labelled montage; every candidate kept under attempts/NN/cand-K/ and the choice in the trace."""

from __future__ import annotations

import json

import pytest
from support.programs import CRASH, GOOD_BARS, GOOD_BARS_V2

import coco_agent
from coco_agent.cli import main
from coco_agent.trace import read_trace

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"
WRONG = GOOD_BARS.replace("150, 140", "105, 140")  # the facts check sees bar Q3 = 105


def choose(label: str) -> str:
    verdict = {
        "match": True,
        "score": 9,
        "problems": [],
        "summary": "the chosen one is right",
        "choice": label,
    }
    return json.dumps(verdict)


def generate(server, tmp_path, **extra):
    settings = {"llm": "openai:test-model", "vlm": "openai:test-model", **extra}
    return coco_agent.generate(
        PROMPT, out=tmp_path / "run", base_url=server.base_url, sandbox="process", refiner="none", **settings
    )


def test_the_best_candidate_wins_every_candidate_is_kept_and_the_trace_shows_the_choice(
    openai_server, tmp_path
):
    openai_server.script(CRASH, WRONG, GOOD_BARS, GOOD_BARS_V2, choose("B"))
    result = generate(openai_server, tmp_path, candidates=4)
    run = tmp_path / "run"
    assert result["status"] == "accepted" and result["rounds"] == 1
    requests = openai_server.chat_requests
    assert [r.get("n") for r in requests] == [4, None]  # one request for 4 programs, one critic call
    for k in (1, 2, 3, 4):
        assert (run / f"attempts/01/cand-{k}/code.py").exists()
    assert not (run / "attempts/01/cand-1/draft.png").exists()  # the crash is kept, with its error
    assert (run / "attempts/01/cand-1/error.txt").exists()
    ranking = json.loads((run / "attempts/01/ranking.json").read_text())
    assert [row["cand"] for row in ranking["ranking"]] == [3, 4, 2, 1] and ranking["shortlist"] == [3, 4]
    assert ranking["ranking"][2]["problems"] == ["bar 'Q3' is 105; the prompt says 150"]
    assert (run / "attempts/01/candidates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(openai_server.image_urls(1)) == 1  # the critic saw one labelled montage
    attempt = result["attempts"][0]
    assert attempt["cand"] == 4 and attempt["verdict"]["chosen"] == 4  # the critic's choice B = candidate 4
    assert attempt["code"] == "attempts/01/cand-4/code.py" and attempt["checks_ok"] is True
    assert (run / "final.png").read_bytes() == (run / "attempts/01/cand-4/draft.png").read_bytes()
    trace = read_trace(run)
    assert sorted(t["cand"] for t in trace if t["node"] == "candidate") == [1, 2, 3, 4]
    select = next(t for t in trace if t["node"] == "select")
    assert select["ranking"] == [3, 4, 2, 1] and select["shortlist"] == [3, 4] and select["best"] == 3
    critique = json.loads((run / "attempts/01/critique.json").read_text())
    assert "critic chose B (candidate 4)" in critique["notes"]


def test_a_server_that_ignores_n_is_topped_up_with_parallel_requests(openai_server, tmp_path):
    openai_server.honour_n = False
    openai_server.script(GOOD_BARS, GOOD_BARS_V2, WRONG, choose("A"))
    result = generate(openai_server, tmp_path, candidates=3)
    assert result["status"] == "accepted"
    coder = [
        r
        for r in openai_server.chat_requests
        if not any(isinstance(m.get("content"), list) for m in r["messages"])
    ]
    assert len(coder) == 3 and coder[0].get("n") == 3 and all(r.get("n") is None for r in coder[1:])
    seeds = [r.get("seed") for r in coder[1:]]
    assert len(set(seeds)) == 2  # the top-up requests are varied (seed), not the same request twice
    for k in (1, 2, 3):
        assert (tmp_path / f"run/attempts/01/cand-{k}/code.py").exists()
    assert result["usage"]["calls"] == 4


def test_a_critic_that_picks_a_candidate_that_does_not_exist_keeps_the_rankings_first(
    openai_server, tmp_path
):
    openai_server.script(GOOD_BARS_V2, GOOD_BARS, choose("Z"))
    result = generate(openai_server, tmp_path, candidates=2)
    attempt = result["attempts"][0]
    assert result["status"] == "accepted" and attempt["cand"] == 1 and attempt["verdict"]["chosen"] == 1
    notes = json.loads((tmp_path / "run/attempts/01/critique.json").read_text())["notes"]
    assert any("named 'Z', which is not one of A, B" in n and "candidate 1" in n for n in notes)


@pytest.mark.parametrize("count", ["0", "1000", "-2"])
def test_a_candidate_count_out_of_range_is_a_usage_error(openai_server, tmp_path, capsys, count):
    run = tmp_path / "run"
    code = main(
        [
            "generate",
            PROMPT,
            "-o",
            str(run),
            "--candidates",
            count,
            "--llm",
            "openai:test-model",
            "--vlm",
            "none",
            "--base-url",
            openai_server.base_url,
            "--sandbox",
            "process",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--candidates must be between 1 and 16" in err, err
    assert not run.exists() and not openai_server.requests


def test_the_ledger_decides_how_many_candidates_a_round_can_still_afford(openai_server, tmp_path):
    verdict = json.dumps(
        {"match": False, "score": 3, "problems": ["orange bars"], "summary": "no", "choice": "A"}
    )
    openai_server.script(*[GOOD_BARS] * 4, verdict)
    openai_server.respond_with(lambda body: choose("A") if "image_url" in json.dumps(body) else GOOD_BARS_V2)
    # round 1 (one request for 4 programs, one critic call) costs what the server reports; round 2 gets as many
    # programs as the rest covers (its prompt: round 1's plus the program to patch; each answer: round 1's mean
    # output) after keeping back one critic call
    budget = 2330
    result = generate(openai_server, tmp_path, candidates=4, budget_tokens=budget)
    first, critic = openai_server.usage[:2]
    answer = first["completion_tokens"] / 4
    left = budget - first["total_tokens"] - 2 * critic["total_tokens"] - (first["prompt_tokens"] + answer)
    afford = int(left / answer)
    old_rule = int((budget - first["total_tokens"] - critic["total_tokens"]) / (first["total_tokens"] / 4))
    assert 2 <= afford < 4 <= old_rule  # the old rule (no reserve, the prompt paid per answer) asked for 4
    assert [r.get("n") for r in openai_server.chat_requests][:3] == [4, None, afford]
    assert (tmp_path / f"run/attempts/02/cand-{afford}/code.py").exists()
    assert not (tmp_path / f"run/attempts/02/cand-{afford + 1}").exists()
    assert (
        result["status"] == "accepted" and len(openai_server.chat_requests) == 4
    )  # the critic judged round 2


TINY_TITLE = GOOD_BARS.replace(
    'ax.set_title("Quarterly Sales 2025")', 'ax.set_title("Quarterly Sales 2025", fontsize=3)'
)
WHITE_TITLE = GOOD_BARS.replace(
    'ax.set_title("Quarterly Sales 2025")', 'ax.set_title("Quarterly Sales 2025", color="white")'
)


def test_geometry_problems_rank_a_candidate_down(openai_server, tmp_path):
    """Candidate 1 draws the right bars with a 3 px title (the geometry checks: too small); candidate 2 is
    right. Without a critic the ranking alone decides: candidate 2, and the round is accepted."""
    openai_server.script(TINY_TITLE, GOOD_BARS_V2)
    result = generate(openai_server, tmp_path, candidates=2, vlm="none")
    run = tmp_path / "run"
    ranking = json.loads((run / "attempts/01/ranking.json").read_text())
    rows = {row["cand"]: row for row in ranking["ranking"]}
    assert [row["cand"] for row in ranking["ranking"]] == [2, 1]
    assert rows[1]["geometry_problems"] >= 1 and rows[2]["geometry_problems"] == 0
    assert ranking["shortlist"] == [2]  # a candidate that fails the geometry checks never makes the shortlist
    attempt = result["attempts"][0]
    assert attempt["cand"] == 2 and result["status"] == "accepted"
    assert (run / "final.png").read_bytes() == (run / "attempts/01/cand-2/draft.png").read_bytes()


def test_ocr_of_the_quoted_title_breaks_a_tie(openai_server, tmp_path):
    """Both candidates draw the quoted title (the facts and geometry checks see the same strings), but
    candidate 1 draws it white on white: the local OCR reads it only in candidate 2, which wins."""
    openai_server.script(WHITE_TITLE, GOOD_BARS_V2)
    result = generate(openai_server, tmp_path, candidates=2, vlm="none", ocr_engine="rapidocr")
    ranking = json.loads((tmp_path / "run/attempts/01/ranking.json").read_text())
    rows = {row["cand"]: row for row in ranking["ranking"]}
    assert rows[1]["quoted_drawn"] == rows[2]["quoted_drawn"] == 1.0
    assert rows[1]["facts_problems"] == rows[2]["facts_problems"] == 0
    assert rows[2]["ocr_score"] > rows[1]["ocr_score"], rows
    assert [row["cand"] for row in ranking["ranking"]] == [2, 1]
    assert result["attempts"][0]["cand"] == 2


def test_the_ranking_order_of_every_criterion():
    """Each criterion decides only when every earlier one ties: ran, checks, facts, geometry, quoted, OCR,
    earlier candidate."""
    from coco_agent.candidates.ranking import rank

    def cand(k, **over):
        base = {
            "cand": k,
            "status": "ok",
            "draft_path": f"attempts/01/cand-{k}/draft.png",
            "checks": {"ok": True, "facts": {"problems": [], "quoted": {"drawn": 1, "total": 1}}},
            "geometry": {"ok": True, "counts": {}},
            "ocr": {"score": 1.0},
        }
        return {**base, **over}

    crashed = cand(1, status="error", draft_path=None)
    blank = cand(2, checks={"ok": False, "problems": ["blank"]})
    wrong_fact = cand(3, checks={"ok": False, "facts": {"problems": ["bar 'Q3' is 105"]}})
    overflow = cand(4, geometry={"ok": False, "counts": {"overflow": 2}})
    half_quoted = cand(5, checks={"ok": True, "facts": {"problems": [], "quoted": {"drawn": 1, "total": 2}}})
    unread = cand(6, ocr={"score": 0.4})
    best, twin = cand(7), cand(8)
    order = [c["cand"] for c in rank([crashed, blank, wrong_fact, overflow, half_quoted, unread, twin, best])]
    assert order == [7, 8, 6, 5, 2, 4, 3, 1]
