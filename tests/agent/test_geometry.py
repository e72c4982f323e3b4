"""Measured geometry checks: programs built to overflow, overlap, shrink or misspell their text, rendered in the
real Docker pool (html from the DOM, graphviz from dot's layout, vega-lite from its scenegraph), the checks'
exact problems, and the agent loop sending them back to the code writer without a critic call."""

from __future__ import annotations

import json

from support.fixtures_models import ScriptedChatModel
from support.programs import ACCEPT

from coco_agent.context import RunContext
from coco_agent.geometry import check_geometry, expected_strings, min_font_px
from coco_agent.routing import best_attempt
from coco_agent.runner import start_run
from coco_agent.sandbox import SandboxLimits
from coco_agent.trace import read_trace

LIMITS = SandboxLimits(timeout_s=20, memory_mb=512)


def _page(body: str, width: int = 400, height: int = 300) -> str:
    return (
        f'<!doctype html><html><head><meta name="viewport" content="width={width}, height={height}"></head>'
        f'<body style="margin:0;width:{width}px;height:{height}px;font-family:sans-serif">{body}</body></html>'
    )


CLEAN = _page(
    '<div style="position:absolute;left:20px;top:20px;width:360px;font-size:32px">Summer Fair</div>'
    '<div style="position:absolute;left:20px;top:90px;width:360px;font-size:18px">Friday 8 PM, City Park</div>'
)
OVERFLOW = _page(
    '<div style="position:absolute;left:20px;top:20px;width:120px;height:40px;font-size:20px;'
    'white-space:nowrap">Friday 8 PM, City Park</div>'
)
OVERLAP = _page(
    '<div style="position:absolute;left:40px;top:40px;font-size:30px">Grand Opening</div>'
    '<div style="position:absolute;left:60px;top:50px;font-size:30px">Free Entry</div>'
)
TINY = _page('<div style="position:absolute;left:20px;top:20px;font-size:5px">terms and conditions</div>')
OFF_CANVAS = _page(
    '<div style="position:absolute;left:330px;top:20px;font-size:24px;white-space:nowrap">Sold out</div>'
)
MISSPELLED = _page('<p style="margin:20px;font-size:24px">Fridy 8 PM, City Park</p>')


def _render(sandbox, code: str, fmt: str = "html"):
    result = sandbox.render(code, fmt, LIMITS)
    assert result.ok, (result.status, result.error)
    assert result.texts is not None
    return result


def _check(result, expected=()):
    return check_geometry(result.texts, list(expected), result.width, result.height)


# ---------------------------------------------------------------- real renders (the Docker pool)


def test_a_clean_html_poster_has_no_problems(docker_sandbox):
    result = _render(docker_sandbox, CLEAN)
    report = _check(result, ["Summer Fair", "Friday 8 PM, City Park"])
    assert report.ok, report.messages()
    assert {t["text"] for t in result.texts} == {"Summer Fair", "Friday 8 PM, City Park"}


def test_html_text_overflowing_its_box_names_the_side_and_pixels(docker_sandbox):
    result = _render(docker_sandbox, OVERFLOW)
    report = _check(result, ["Friday 8 PM, City Park"])
    (problem,) = report.problems
    (text,) = result.texts
    expected_px = text["box"][2] - text["container"][2]
    assert problem.kind == "overflow" and problem.detail == {"past": {"right": expected_px}, "of": "box"}
    assert expected_px > 40  # 22 characters of 20 px text in a 120 px box
    assert problem.message == f"'Friday 8 PM, City Park' overflows its box by {expected_px} px on the right"


def test_html_text_past_the_canvas(docker_sandbox):
    result = _render(docker_sandbox, OFF_CANVAS)
    (problem,) = _check(result).problems
    assert problem.kind == "overflow" and problem.detail["of"] == "canvas"
    assert set(problem.detail["past"]) == {"right"} and "runs off the canvas by" in problem.message


def test_overlapping_html_texts(docker_sandbox):
    result = _render(docker_sandbox, OVERLAP)
    (problem,) = _check(result).problems
    assert problem.kind == "overlap"
    assert {problem.text, problem.detail["with"]} == {"Grand Opening", "Free Entry"}
    assert "overlap (" in problem.message


def test_too_small_html_text(docker_sandbox):
    result = _render(docker_sandbox, TINY)
    (problem,) = _check(result).problems
    assert problem.kind == "too_small" and problem.detail == {"font_px": 5.0, "min": 9.0}


def test_misspelled_and_missing_quoted_strings(docker_sandbox):
    result = _render(docker_sandbox, MISSPELLED)
    prompt = "A flyer saying 'Friday 8 PM, City Park' and 'Bring a blanket'"
    report = _check(result, expected_strings(prompt, None))
    kinds = {p.text: p for p in report.problems}
    assert kinds["Friday 8 PM, City Park"].kind == "misspelled"
    assert kinds["Friday 8 PM, City Park"].detail["drawn"] == "Fridy 8 PM, City Park"
    assert kinds["Bring a blanket"].kind == "missing"


def test_graphviz_label_overflowing_a_fixed_size_node(docker_sandbox):
    dot = (
        'digraph { node [shape=box fixedsize=true width=0.6 height=0.4]; a [label="a much too long label"]; }'
    )
    result = _render(docker_sandbox, dot, "graphviz")
    (problem,) = _check(result).problems
    assert problem.kind == "overflow" and problem.text == "a much too long label"
    assert set(problem.detail["past"]) == {"left", "right"}


def test_a_clean_graphviz_flowchart_and_vega_chart_have_no_problems(docker_sandbox):
    dot = 'digraph { rankdir=LR; start -> "check input" -> done; "check input" -> start [label="retry"]; }'
    graph = _render(docker_sandbox, dot, "graphviz")
    report = _check(graph, ["check input", "retry"])
    assert report.ok, report.messages()
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Quarterly Sales",
        "width": 400,
        "height": 300,
        "data": {"values": [{"q": q, "v": v} for q, v in zip("ABCD", (100, 120, 150, 140), strict=True)]},
        "mark": "bar",
        "encoding": {"x": {"field": "q", "type": "nominal"}, "y": {"field": "v", "type": "quantitative"}},
    }
    chart = _render(docker_sandbox, json.dumps(spec), "vega-lite")
    report = _check(chart, ["Quarterly Sales"])
    assert report.ok, report.messages()


def test_vega_lite_tiny_text_mark(docker_sandbox):
    spec = {
        "width": 300,
        "height": 200,
        "data": {"values": [{"x": 1, "y": 1, "t": "fine print"}]},
        "mark": {"type": "text", "fontSize": 4},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "axis": None},
            "y": {"field": "y", "type": "quantitative", "axis": None},
            "text": {"field": "t"},
        },
    }
    result = _render(docker_sandbox, json.dumps(spec), "vega-lite")
    problems = [p for p in _check(result).problems if p.kind == "too_small"]
    assert [p.text for p in problems] == ["fine print"]


def test_cjk_html_text_is_checked_by_characters(docker_sandbox):
    page = _page('<p style="margin:20px;font-size:28px;font-family:sans-serif">夏日音乐节 周五晚八点</p>')
    result = _render(docker_sandbox, page)
    assert _check(result, ["夏日音乐节", "周五晚八点"]).ok
    (problem,) = _check(result, ["夏日音乐会"]).problems
    assert problem.kind == "misspelled" and problem.detail["drawn"] == "夏日音乐节"


# ---------------------------------------------------------------- the checks themselves (records)


def _text(text: str, box, container=None, font_px=16.0) -> dict:
    return {"text": text, "box": list(box), "container": container, "font_px": font_px}


SVG_POSTER = """<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200" viewBox="0 0 800 400">
<rect width="800" height="400" fill="#123"/>
<text x="400" y="120" font-size="60" fill="white" text-anchor="middle">Grand <tspan fill="yellow">Opening</tspan></text>
<text x="60" y="250" font-size="40" fill="white">Free Entry</text>
<text x="90" y="262" font-size="40" fill="white">Live Music</text>
<text x="700" y="340" font-size="40" fill="white">Sold out</text>
<text x="20" y="390" font-size="9" fill="#ccc">terms apply</text>
<text x="20" y="40" font-size="40" fill="#fff" display="none">hidden words</text>
</svg>"""


def test_svg_strings_are_measured_in_device_pixels_with_their_problems(docker_sandbox):
    """The SVG renderer measures each text run's glyph outlines while drawing (viewBox scale 0.5 here):
    unclipped boxes, font size in pixels; a <text> and its <tspan> share one container, so they are one flow."""
    result = _render(docker_sandbox, SVG_POSTER, "svg")
    texts = {t["text"]: t for t in result.texts}
    assert set(texts) == {"Grand ", "Opening", "Free Entry", "Live Music", "Sold out", "terms apply"}
    assert (
        texts["Opening"]["container"] == texts["Grand "]["container"]
        and texts["Sold out"]["container"] is None
    )
    assert texts["Free Entry"]["font_px"] == 20.0 and texts["terms apply"]["font_px"] == 4.5
    assert texts["Sold out"]["box"][2] > result.width  # runs off the canvas: not clipped
    report = _check(result, ["Grand Opening", "Sold out", "Gala Dinner"])
    kinds = {(p.kind, p.text) for p in report.problems}
    assert kinds == {
        ("missing", "Gala Dinner"),
        ("overflow", "Sold out"),
        ("overlap", "Free Entry"),
        ("too_small", "terms apply"),
    }, report.messages()


def test_lines_of_one_block_never_count_as_overlap_but_blocks_do():
    para = [0, 0, 200, 60]
    lines = [_text("one long paragraph that", (0, 0, 200, 40), para), _text("wraps", (0, 20, 60, 60), para)]
    assert check_geometry(lines, [], 400, 300).ok
    other = [lines[0], _text("wraps", (0, 20, 60, 60), [0, 20, 60, 60])]
    assert [p.kind for p in check_geometry(other, [], 400, 300).problems] == ["overlap"]


def test_tolerances_and_thresholds():
    edge = [_text("Edge", (-2, 0, 402, 20)), _text("Inside", (10, 30, 62, 52), [10, 30, 60, 50])]
    assert check_geometry(edge, [], 400, 300).ok  # 2 px of antialiasing is not an overflow
    grazing = [_text("A", (0, 0, 100, 20)), _text("B", (0, 18, 100, 38))]  # 2 rows shared
    assert check_geometry(grazing, [], 400, 300).ok
    assert min_font_px(400, 300) == 9.0 and min_font_px(2000, 1500) == 15.0
    big = [_text("caption", (0, 0, 100, 14), font_px=12.0)]
    assert check_geometry(big, [], 400, 300).ok
    assert [p.kind for p in check_geometry(big, [], 2000, 1500).problems] == ["too_small"]


def test_strings_compare_without_case_or_punctuation_and_across_text_runs():
    drawn = [_text("FRIDAY", (0, 0, 50, 20)), _text("8 PM — City Park!", (60, 0, 200, 20))]
    assert check_geometry(drawn, ["Friday 8 PM, City Park"], 400, 300).ok


def test_the_batch_files_texts_win_over_the_prompts_quotes():
    assert expected_strings("a sign saying 'Open'", ["Closed"]) == ["Closed"]
    assert expected_strings("a sign saying 'Open'", []) == ["Open"]


def test_the_writer_hears_at_most_eight_problems_of_a_kind():
    tiny = [_text(f"t{i}", (0, 12 * i, 20, 12 * i + 6), font_px=4.0) for i in range(20)]
    messages = check_geometry(tiny, [], 400, 300).messages()
    assert len(messages) == 9 and messages[-1] == "... and 12 more too small problem(s)"


def test_best_attempt_counts_geometry_problems():
    attempts = [
        {"round": 1, "draft_path": "a", "checks": {"ok": True}, "geometry": {"counts": {"overflow": 1}}},
        {"round": 2, "draft_path": "b", "checks": {"ok": True}, "geometry": {"counts": {"overflow": 2}}},
        {"round": 3, "draft_path": "c", "checks": {"ok": False}, "geometry": {"counts": {}}},
    ]
    assert best_attempt(attempts)["round"] == 1


# ---------------------------------------------------------------- the agent loop


def _fenced(page: str) -> str:
    return f"```html\n{page}\n```"


def test_a_geometry_failure_goes_back_to_the_writer_without_a_critic_call(tmp_path, docker_sandbox):
    coder = ScriptedChatModel(replies=[_fenced(OVERFLOW), _fenced(CLEAN)])
    critic = ScriptedChatModel(replies=[ACCEPT])
    ctx = RunContext(llm=coder, vlm=critic, sandbox="docker", format="html", max_rounds=3)
    run_dir = tmp_path / "run"
    prompt = "A poster: 'Summer Fair' above 'Friday 8 PM, City Park'"
    result = start_run(prompt, ctx, run_dir)
    assert result["status"] == "accepted" and result["rounds"] == 2
    assert len(critic.received) == 1  # only the second draft reached the critic
    geometry = json.loads((run_dir / "attempts/01/geometry.json").read_text())
    missing, problem = geometry["problems"]
    assert missing["kind"] == "missing" and problem["kind"] == "overflow" and geometry["ok"] is False
    assert {t["text"] for t in geometry["texts"]} == {"Friday 8 PM, City Park"}
    retry = coder.received[1][-1].content
    retry = retry if isinstance(retry, str) else " ".join(b.get("text", "") for b in retry)
    assert problem["message"] in retry and "'Summer Fair' is missing" in retry
    assert json.loads((run_dir / "attempts/02/geometry.json").read_text())["ok"] is True
    assert result["attempts"][0]["geometry"] == {"missing": 1, "overflow": 1}
    assert result["attempts"][1]["geometry"] == {}
    execute = [t for t in read_trace(run_dir) if t["node"] == "execute"]
    assert execute[0]["geometry"] == {"missing": 1, "overflow": 1}
    check = [t for t in read_trace(run_dir) if t["node"] == "check"][0]
    assert check["decision"] == "write_code" and "geometry checks failed" in check["why"]
