"""`--critique split` and the verdict's repair strategy, through the real langchain-openai client against the
local server: a visual critic lists what the image shows wrong, a code critic maps each problem to lines of the
program, and the code writer gets both; a `rewrite` verdict makes the writer start over from the request."""

from __future__ import annotations

import json

from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2, reject

import coco_agent

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


def generate(server, tmp_path, **extra):
    return coco_agent.generate(
        PROMPT,
        out=tmp_path / "run",
        llm="openai:test-model",
        vlm="openai:test-model",
        base_url=server.base_url,
        sandbox="process",
        refiner="none",
        **extra,
    )


def test_split_critique_maps_problems_to_lines_and_the_writer_gets_both(openai_server, tmp_path):
    code_map = {
        "fixes": [{"problem": "the bars must be orange", "lines": "3", "fix": "use color='tab:orange'"}]
    }
    openai_server.script(
        GOOD_BARS, reject("the bars must be orange"), json.dumps(code_map), GOOD_BARS_V2, ACCEPT
    )
    result = generate(openai_server, tmp_path, critique="split")
    assert result["status"] == "accepted" and result["rounds"] == 2
    requests = openai_server.chat_requests
    assert len(requests) == 5
    assert "line numbers on the left" in json.dumps(
        requests[2]["messages"]
    )  # the code critic saw the program
    assert "   3  ax.bar(" in json.dumps(requests[2]["messages"]).replace("\\n", "\n")
    writer = json.dumps(requests[3]["messages"])
    assert "the bars must be orange" in writer and "lines 3: use color='tab:orange'" in writer
    assert "ax.bar(" in writer  # patch (the default strategy): the last program is shown to be fixed
    saved = json.loads((tmp_path / "run/attempts/01/code_critique.json").read_text())
    assert saved["fixes"] == code_map["fixes"]
    assert [r["role"] for r in result["calls"]].count("critic") == 3  # visual, code, visual


def test_a_rewrite_verdict_sends_the_writer_back_to_the_request(openai_server, tmp_path):
    rewrite = json.dumps(
        {
            "match": False,
            "score": 1,
            "problems": ["this is not a bar chart"],
            "summary": "wrong",
            "strategy": "rewrite",
        }
    )
    openai_server.script(GOOD_BARS, rewrite, GOOD_BARS_V2, ACCEPT)
    result = generate(openai_server, tmp_path)
    assert result["status"] == "accepted" and result["attempts"][0]["verdict"]["strategy"] == "rewrite"
    writer = openai_server.chat_requests[2]["messages"]
    text = json.dumps(writer)
    assert "this is not a bar chart" in text
    assert "ax.bar(" not in text  # starting over: the last program is not shown to be patched
