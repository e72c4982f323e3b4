"""`coco report`: the static HTML report of a real batch (critic, retries, crash, max_rounds, failure), opened in
a real headless Chromium (Debian's `chromium`): screenshot, every image loaded, filtering, escaping."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from support.batch_helpers import keyed, keyed_responder, write_jsonl
from support.browser import headless, image_check
from support.fixtures_models import serve_fake_openai
from support.paths import REPO_ROOT
from support.programs import CRASH, GOOD_BARS, GOOD_BARS_V2, reject

from coco_agent.batch import BatchOptions, run_batch
from coco_agent.cli import main
from coco_agent.context import RunContext
from coco_agent.report import ReportError, write_report

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory) -> Path:
    """A finished batch of six prompts with every kind of outcome, made through the local OpenAI server."""
    tmp = tmp_path_factory.mktemp("report")
    refuse = (400, {"error": {"message": "content policy says no", "type": "invalid_request_error"}})
    records = [
        {"id": "sales", "prompt": keyed("sales", "A bar chart titled 'Quarterly Sales 2025', Q1-Q4")},
        {"id": "orange", "prompt": keyed("orange", "The same chart with orange bars")},
        {"id": "crash", "prompt": keyed("crash", "A chart whose first program crashes")},
        {"id": "stubborn", "prompt": keyed("stubborn", "A chart the critic never likes")},
        {"id": "refused", "prompt": keyed("refused", "A prompt the model refuses")},
        {"id": "hostile", "prompt": keyed("hostile", f"A chart with the caption {HOSTILE}")},
    ]
    with serve_fake_openai() as server:
        server.respond_with(
            keyed_responder(
                coder={
                    "orange": [GOOD_BARS, GOOD_BARS_V2],
                    "crash": [CRASH, GOOD_BARS],
                    "refused": [refuse],
                },
                critic={
                    "orange": [reject("the bars must be orange")],
                    "stubborn": [reject("the title is missing"), reject("the title is still missing")],
                },
            )
        )
        ctx = RunContext(
            llm="openai:test-model",
            vlm="openai:test-model",
            base_url=server.base_url,
            sandbox="process",
            max_rounds=2,
        )
        run_batch(BatchOptions(write_jsonl(tmp / "prompts.jsonl", records), tmp / "out", ctx, workers=2))
    return tmp / "out"


def test_report_in_headless_chromium(batch_out, tmp_path):
    report = write_report(batch_out)
    assert report == batch_out / "report.html"
    html = report.read_text()
    assert "<script>document.title" not in html and "&lt;script&gt;document.title" in html
    assert 'class="hl"' in html and "the bars must be orange" in html and "boom-4711" in html
    assert "critic rejected" in html and "content policy says no" in html

    screenshot = tmp_path / "report.png"
    shot = headless(report.as_uri(), tmp_path / "p1", "--window-size=1280,1800", f"--screenshot={screenshot}")
    assert shot.returncode == 0 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot.stderr
    dom = headless(report.as_uri(), tmp_path / "p2", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    check = image_check(dom.stdout)
    assert check["broken"] == [] and check["loaded"] == check["total"] >= 15
    assert "<title>pwned</title>" not in dom.stdout  # the hostile prompt stayed text
    if os.environ.get("COCO_UPDATE_DOCS"):
        shutil.copyfile(screenshot, REPO_ROOT / "docs" / "report.png")

    filtered = headless(report.as_uri() + "#status=failed", tmp_path / "p3", "--dump-dom").stdout
    rows = re.findall(r'<tr data-status="([a-z_]+)"( hidden="")?>', filtered)
    assert {status for status, hidden in rows if not hidden} == {"failed"}
    assert len(rows) == 6


def test_report_with_embedded_images_and_of_one_run(batch_out, tmp_path):
    single = write_report(batch_out / "orange", tmp_path / "elsewhere" / "orange.html", embed_images=True)
    html = single.read_text()
    assert "src='attempts" not in html and html.count("data:image/png;base64,") >= 3 + 2 + 2
    assert "Round 2" in html and "the bars must be orange" in html
    dom = headless(single.as_uri(), tmp_path / "p", "--dump-dom")
    check = image_check(dom.stdout)
    assert check["broken"] == [] and check["loaded"] == check["total"]


def test_report_cli_and_bad_targets(batch_out, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(batch_out), "-o", str(out), "--details", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    assert html.count("<section class='run'") == 2 and "first 2 of 6 prompts" in html
    assert "../" in html  # images linked relative to the report's folder
    with pytest.raises(ReportError, match="neither a batch"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
