"""`coco studio` end to end in a real headless Chromium (CDP), against the local scripted model server: start a
run from the page, watch its rounds appear, edit a round's code, continue, and check the new final; answer a run
paused for review; the batch view; and the requests it refuses."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.batch_helpers import clean_env, coco, keyed, keyed_responder, model_args, write_jsonl
from support.cdp import Browser
from support.fixtures_models import Slow
from support.paths import REPO_ROOT
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2, reject

from coco_agent.report.collect import current_line
from coco_agent.runlock import run_lock

pytestmark = pytest.mark.slow

SVG_PROGRAM = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'
)
ORANGE = "\n".join(GOOD_BARS_V2.splitlines()[1:-1])  # the program without its fence
PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


class Studio:
    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc, self.url = proc, url
        parts = urlsplit(url)
        self.host, self.port, self.token = parts.hostname, parts.port, parts.query.split("=", 1)[1]

    def get(self, path: str, token: bool = True) -> tuple[int, bytes]:
        """A raw GET (the path sent exactly as given, no client-side normalisation)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", path, headers={"X-Coco-Token": self.token} if token else {})
        response = conn.getresponse()
        return response.status, response.read()

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"X-Coco-Token": self.token, "Content-Type": "application/json"}
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")


def start_studio(runs: Path, server, *extra: str) -> Studio:
    args = ["studio", "--port", "0", "--runs", str(runs), *model_args(server, "server"), *extra]
    proc = subprocess.Popen(
        [sys.executable, "-m", "coco_agent.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    line = proc.stdout.readline()
    if not line.startswith("coco studio: http://"):
        proc.kill()
        pytest.fail(f"the studio did not start: {line} {proc.stderr.read()[-2000:]}")
    return Studio(proc, line.split()[2])


def stop(studio: Studio) -> None:
    studio.proc.terminate()
    try:
        studio.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        studio.proc.kill()


ROUNDS = "document.querySelectorAll('#run .round[data-round]').length"
REVIEWING = (
    "document.getElementById('review') !== null && document.getElementById('review').textContent.includes("
)
DONE = "document.querySelector('#run h2 .badge.accepted') !== null"  # result.json written, the job over
ROUND_1 = '#run .round[data-round="1"]'
FINAL_LOADED = "(() => { const i = document.getElementById('final-image'); return !!(i && i.complete && i.naturalWidth > 0); })()"


def test_studio_end_to_end_in_chromium(openai_server, tmp_path):
    runs = tmp_path / "runs"
    openai_server.respond_with(keyed_responder(critic={}))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("north", "south")])
    assert (
        coco("batch", str(prompts), "-o", str(runs / "sales-batch"), *model_args(openai_server)).returncode
        == 0
    )
    openai_server.respond_with(None)

    studio = start_studio(runs, openai_server)
    try:
        with Browser(1280, 1000) as browser:
            browser.open(studio.url)
            browser.wait_for("document.querySelectorAll('#batch-rows tr').length === 2", "the batch view")
            browser.evaluate(
                "document.getElementById('batch-status').value = 'failed'; document.getElementById('batch-status').dispatchEvent(new Event('change'))"
            )
            assert (
                browser.evaluate("document.querySelectorAll('#batch-rows tr').length") == 0
            )  # the report's filter
            browser.evaluate(
                "document.getElementById('batch-status').value = ''; document.getElementById('batch-status').dispatchEvent(new Event('change'))"
            )

            # a run from the page: round 1 is rejected, round 2 (slow) accepted; the rounds appear as they happen
            openai_server.script(GOOD_BARS, reject("the bars must be orange"), Slow(4, GOOD_BARS_V2), ACCEPT)
            browser.evaluate(f"document.getElementById('prompt').value = {json.dumps(PROMPT)}")
            browser.evaluate("document.getElementById('draw').click()")
            browser.wait_for(f"document.querySelector('{ROUND_1} .critique') !== null", "round 1's critique")
            assert "mismatch" in browser.evaluate(
                f"document.querySelector('{ROUND_1} .critique').textContent"
            )
            assert browser.evaluate(f"document.querySelector('{ROUND_1} img.draft') !== null")
            # round 2's program is still being written (the model answers 4 s late): no draft, no final yet
            assert not browser.evaluate(FINAL_LOADED)
            assert not browser.evaluate("document.querySelector('#run .round[data-round=\"2\"] img.draft')")
            browser.wait_for(f"{ROUNDS} === 2 && {FINAL_LOADED} && {DONE}", "round 2 and the final image")
            run_id = browser.evaluate("document.querySelector('#runs li.selected').dataset.run")
            run_dir = runs / run_id
            first = json.loads((run_dir / "result.json").read_text())
            assert first["status"] == "accepted" and first["rounds"] == 2
            assert browser.evaluate(
                "document.querySelector('#run .round[data-round=\"1\"] .hl') !== null"
            )  # highlighted
            assert "critic accepted" in browser.evaluate("document.getElementById('run').textContent")

            # edit round 1's code in the page and continue: a new round 2 written by a person
            openai_server.script(ACCEPT)
            browser.evaluate("document.querySelector('#run .round[data-round=\"1\"] button.edit').click()")
            browser.wait_for("document.getElementById('editor-1') !== null", "the editor")
            code = browser.evaluate("document.getElementById('editor-1').value")
            assert "tab:blue" in code
            browser.evaluate(
                f"document.getElementById('editor-1').value = {json.dumps(code.replace('tab:blue', 'tab:green'))}"
            )
            browser.evaluate("document.getElementById('continue-1').click()")
            browser.wait_for(
                "document.querySelector('#run .badge.edited') !== null && document.querySelector('#run .badge.human') !== null"
                f" && {FINAL_LOADED} && !document.querySelector('#run .badge.running')"
                " && document.querySelector('#runs li.selected .badge.accepted') !== null",
                "the edited run's new final",
            )
            browser.screenshot(tmp_path / "studio.png", full_page=True)
            loaded = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
            origin = f"http://{studio.host}:{studio.port}/"
            assert loaded and all(url.startswith(origin) for url in loaded), (
                loaded
            )  # offline: nothing elsewhere
            shown = browser.evaluate("document.getElementById('final-image').getAttribute('src')")
            assert shown.endswith(f"/final.png?v={(run_dir / 'final.png').stat().st_mtime_ns}")  # the new one
            nodes = browser.evaluate(
                "[...document.querySelectorAll('#run .round[data-round=\"2\"] .decision b')].map(b => b.textContent)"
            )
            assert (
                nodes[0] == "edit" and "write_code" not in nodes
            )  # the replaced line's round 2 is not shown
            edited = json.loads((run_dir / "result.json").read_text())
            assert edited["status"] == "accepted" and [e["from_round"] for e in edited["edits"]] == [1]
            assert [a["source"] for a in edited["attempts"]] == ["model", "human"]
            assert "tab:green" in (run_dir / "attempts/02/code.py").read_text()
            assert (run_dir / "final.png").read_bytes() != (
                run_dir / "edits/01/replaced/final.png"
            ).read_bytes()

            # a run paused for review, answered from the page: reject (a new round by the model), edit (a round
            # by a person), accept
            openai_server.script(GOOD_BARS, ACCEPT, GOOD_BARS_V2, ACCEPT, ACCEPT)
            browser.evaluate("document.getElementById('review-point').value = 'draft'")
            browser.evaluate(
                "document.getElementById('prompt').value = 'bars, reviewed'; document.getElementById('draw').click()"
            )
            browser.wait_for(f"{REVIEWING} 'draft, round 1')", "the review box of round 1")
            browser.evaluate(
                "document.getElementById('feedback').value = 'orange bars, please'; document.getElementById('reject').click()"
            )
            browser.wait_for(f"{REVIEWING} 'draft, round 2')", "the review box of round 2")
            browser.evaluate("document.getElementById('review-edit').click()")
            browser.wait_for("document.getElementById('editor-2') !== null", "the editor at the review")
            code = browser.evaluate("document.getElementById('editor-2').value")
            assert "tab:orange" in code
            browser.evaluate(
                f"document.getElementById('editor-2').value = {json.dumps(code.replace('tab:orange', 'tab:red'))}"
            )
            browser.evaluate("document.getElementById('continue-2').click()")
            browser.wait_for(f"{REVIEWING} 'draft, round 3')", "the review box of round 3 (the person's)")
            browser.evaluate("document.getElementById('accept').click()")
            browser.wait_for(
                f"{FINAL_LOADED} && {DONE} && document.getElementById('review') === null",
                "the reviewed run's final",
            )
            reviewed = browser.evaluate("document.querySelector('#runs li.selected').dataset.run")
        result = json.loads((runs / reviewed / "result.json").read_text())
        assert result["status"] == "accepted" and result["rounds"] == 3
        assert [a["source"] for a in result["attempts"]] == ["model", "model", "human"]
        assert "tab:red" in (runs / reviewed / "attempts/03/code.py").read_text()
        sent = [json.dumps(body) for body in openai_server.chat_requests]
        assert any("orange bars, please" in body for body in sent)  # the rejection reached the code writer
        if os.environ.get("COCO_UPDATE_DOCS"):
            shutil.copyfile(tmp_path / "studio.png", REPO_ROOT / "docs" / "studio.png")

        # the CLI sees the studio's runs, and the studio the CLI's
        assert coco("review", str(runs / reviewed)).returncode == 2  # nothing waits any more
        status, body = studio.get("/api/runs")
        ids = {r["id"] for r in json.loads(body)["runs"]}
        assert {run_id, reviewed, "sales-batch/north", "sales-batch/south"} <= ids
    finally:
        stop(studio)


def test_studio_refuses_what_it_must(openai_server, tmp_path):
    runs = tmp_path / "runs"
    openai_server.script(GOOD_BARS, ACCEPT)
    assert (
        coco("generate", "bars", "-o", str(runs / "one"), *model_args(openai_server, "server")).returncode
        == 0
    )
    (tmp_path / "secret.png").write_bytes((runs / "one/final.png").read_bytes())
    (runs / "one" / "leak.png").symlink_to(tmp_path / "secret.png")
    (runs / "escape").symlink_to(tmp_path)
    studio = start_studio(runs, openai_server)
    try:
        assert studio.get("/api/runs", token=False)[0] == 403
        assert studio.get("/?token=wrong", token=False)[0] == 403
        assert studio.get("/files/one/final.png")[0] == 200
        status, page = studio.get("/")
        assert (
            status == 200
            and b"http:" not in page
            and b"https:" not in page
            and b"//" not in page.split(b"<script>")[0]
        )
        for path in (
            "/files/../secret.png",
            "/files/one/../../secret.png",
            "/files/%2e%2e/secret.png",
            "/files/one/%2e%2e%2f%2e%2e%2fsecret.png",
            "/files//etc/passwd",
            "/files/one/leak.png",
            "/files/escape/secret.png",
            "/api/runs/%2e%2e%2f",
            "/api/runs/..%2f..%2fetc",
        ):
            status, body = studio.get(path)
            assert status in (403, 404), (path, status)
            assert b"\x89PNG" not in body and b"root:" not in body
        assert studio.get("/files/one/run.json")[0] == 403  # pictures only
        assert studio.get("/files/one/attempts/01/code.py")[0] == 403
        status, answer = studio.post("/api/runs/one/edit", {"code": ""})
        assert status == 400 and "empty" in answer["error"]
        status, answer = studio.post("/api/runs/../x/edit", {"code": "print(1)"})
        assert status in (403, 404)
        status, answer = studio.post("/api/runs", {"prompt": "x", "llm": "hf:/tmp/weights"})
        assert status == 400 and "local weights" in answer["error"]
        status, answer = studio.post("/api/runs", {"prompt": "x", "refiner": "/tmp/some/pipeline"})
        assert status == 400 and "refiner" in answer["error"]
        status, answer = studio.post("/api/runs/one/review", {"action": "accept"})
        assert status == 400 and "waits for no review" in answer["error"]
        status, answer = studio.post(
            "/api/runs/one/edit", {"code": SVG_PROGRAM}
        )  # another format than the run's
        assert status == 400 and "looks like svg" in answer["error"]
        before = (runs / "one/result.json").read_bytes()
        with run_lock(runs / "one", "coco edit (someone at the terminal)"):  # two people continuing one run
            status, answer = studio.post("/api/runs/one/edit", {"code": ORANGE})
        assert status == 409 and "being continued" in answer["error"]
        assert (runs / "one/result.json").read_bytes() == before and not (runs / "one/edits").exists()
    finally:
        stop(studio)


def test_studio_on_another_address_says_so(openai_server, tmp_path):
    studio = start_studio(tmp_path / "runs", openai_server, "--host", "0.0.0.0")
    try:
        assert "?token=" in studio.url and len(studio.token) >= 20
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = Studio(studio.proc, studio.url.replace("0.0.0.0", "127.0.0.1")).get(
                    "/", token=False
                )
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert status == 403
    finally:
        stop(studio)
    assert "anyone who reaches it with the token" in studio.proc.stderr.read()


def test_the_trace_of_the_current_line_only():
    """Trace lines of the line an edit replaced (its round and later ones, before the edit) are not shown."""
    trace = [
        {"node": "prepare", "round": 0},
        {"node": "write_code", "round": 1},
        {"node": "critique", "round": 1},
        {"node": "write_code", "round": 2},
        {"node": "finalize", "round": 2},
        {"node": "edit", "round": 2},
        {"node": "runner", "round": None},
        {"node": "finalize", "round": 2},
    ]
    kept = current_line(trace)
    assert [(e["node"], e["round"]) for e in kept] == [
        ("prepare", 0), ("write_code", 1), ("critique", 1), ("edit", 2), ("runner", None), ("finalize", 2),
    ]  # fmt: skip
    assert current_line(trace[:5]) == trace[:5]


def test_studio_shows_the_refinement_and_refines_only_what_changed(openai_server, tmp_path, tiny_img2img_dir):
    """With a refiner (a tiny random inpainting pipeline): the page shows the refinement before/after; a title
    edited in the page is refined again in its region only."""
    from support.programs import STORES_CHART as CHART
    from support.programs import code_of

    studio = start_studio(
        tmp_path / "runs", openai_server, "--vlm", "none", "--refiner", f"inpaint:{tiny_img2img_dir}",
        "--refine-strength", "0.9", "--no-refine-guard", "--clip", "none",
    )  # fmt: skip
    refined = "(() => { const i = document.querySelector('#refinement img[alt=refined]'); return !!(i && i.complete && i.naturalWidth > 0); })()"
    try:
        with Browser(1280, 1000) as browser:
            browser.open(studio.url)
            openai_server.script(CHART)
            browser.evaluate("document.getElementById('prompt').value = 'a bar chart of stores'")
            browser.evaluate("document.getElementById('draw').click()")
            browser.wait_for(f"{refined} && {DONE}", "the refinement's before and after", limit=300)
            run_dir = (
                tmp_path
                / "runs"
                / browser.evaluate("document.querySelector('#runs li.selected').dataset.run")
            )
            assert json.loads((run_dir / "result.json").read_text())["refinement"]["kept"] is True

            browser.evaluate("document.querySelector('#run .round[data-round=\"1\"] button.edit').click()")
            browser.wait_for("document.getElementById('editor-1') !== null", "the editor")
            edited = code_of(CHART).replace("Stores 2025", "Stores 2026")
            browser.evaluate(f"document.getElementById('editor-1').value = {json.dumps(edited)}")
            browser.evaluate("document.getElementById('continue-1').click()")
            browser.wait_for(
                f"document.querySelector('#run .badge.human') !== null && {refined} && {DONE}"
                " && document.getElementById('refinement').textContent.includes('re-refined only what changed')",
                "the region-only refinement",
                limit=300,
            )
        result = json.loads((run_dir / "result.json").read_text())
        region = result["refinement"]["region"]
        assert (
            region["previous_final"] == "edits/01/replaced/final.png" and 0 < region["region_fraction"] < 0.25
        )
    finally:
        stop(studio)
