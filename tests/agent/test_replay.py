"""`coco replay RUN -o NEW`: a recorded run re-derived from its recorded answers with zero model calls (the
server is shut down first, and the replay's models raise if called), byte for byte; a changed recorded answer
is reported as a difference; a folder that is not a run is refused."""

from __future__ import annotations

import json

from support.fixtures_models import serve_fake_openai
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2, reject

import coco_agent
from coco_agent.cli import main
from coco_agent.rundir import CALLS_FILE

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"
WRONG = GOOD_BARS.replace("150, 140", "105, 140")


def recorded_run(tmp_path, **extra):
    run = tmp_path / "run"
    with serve_fake_openai() as server:  # closed before any replay: a model call could not be answered
        server.script(WRONG, GOOD_BARS, reject("the bars must be orange"), GOOD_BARS_V2, ACCEPT)
        result = coco_agent.generate(
            PROMPT,
            out=run,
            llm="openai:test-model",
            vlm="openai:test-model",
            base_url=server.base_url,
            sandbox="process",
            refiner="none",
            **extra,
        )
    assert result["status"] == "accepted" and result["rounds"] == 3
    return run


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_replay_reproduces_a_run_byte_for_byte_with_zero_model_calls(tmp_path, capsys):
    run = recorded_run(tmp_path)
    code = main(["replay", str(run), "-o", str(tmp_path / "again"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["identical"] and report["differences"] == [], report
    assert report["model_calls"] == 0 and report["calls_replayed"] == 5
    recorded, replayed = files(run / "attempts"), files(tmp_path / "again" / "attempts")
    assert recorded.keys() == replayed.keys() and all(recorded[k] == replayed[k] for k in recorded)
    assert (run / "final.png").read_bytes() == (tmp_path / "again" / "final.png").read_bytes()
    # the facts check's feedback of round 1 was re-derived, not recorded
    assert json.loads((tmp_path / "again/attempts/01/facts.json").read_text())["check"]["problems"] == [
        "bar 'Q3' is 105; the prompt says 150"
    ]


def test_replay_reports_a_recorded_answer_that_changed(tmp_path, capsys):
    run = recorded_run(tmp_path)
    calls = (run / CALLS_FILE).read_text().splitlines()
    calls[-2] = calls[-2].replace("tab:orange", "tab:red")  # round 3's program, as if the model had said so
    (run / CALLS_FILE).write_text("\n".join(calls) + "\n")
    code = main(["replay", str(run), "-o", str(tmp_path / "again"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert not report["identical"] and report["model_calls"] == 0
    assert any("attempts/03/code.py" in d for d in report["differences"]), report["differences"]
    assert any("attempts/03/draft.png" in d for d in report["differences"]), report["differences"]
    assert code != 0


def test_replay_of_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    code = main(["replay", str(tmp_path / "nothing"), "-o", str(tmp_path / "again")])
    assert code == 2 and "error" in capsys.readouterr().err
