"""The cost ledger and budgets (coco_agent/ledger/): the real langchain-openai client against the local server,
which reports usage the way OpenAI does; the process sandbox; real LangGraph checkpoints for resume.

Ledger sums against the server's own usage figures; dollars from a price file, "price unknown" (never a guess)
without one; a token / dollar budget that stops a run mid-way and a resume with a larger one; a batch budget that
stops new prompts; and bad input: negative budgets, a price file that does not parse, a dollar budget for a model
without a price.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support.batch_helpers import keyed, keyed_responder, requests_for, write_jsonl
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2, reject

import coco_agent
from coco_agent.cli import main
from coco_agent.ledger.records import read_calls
from coco_agent.report import write_report
from coco_agent.rundir import CALLS_FILE
from coco_agent.trace import read_trace

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"
PRICE_IN, PRICE_OUT = 3.0, 12.0  # dollars per million tokens, for the local server's model


def settings(server, **extra):
    return {
        "llm": "openai:test-model",
        "vlm": "openai:test-model",
        "base_url": server.base_url,
        "sandbox": "process",
        "refiner": "none",
        **extra,
    }


def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"openai:test-model@*": {"input": PRICE_IN, "output": PRICE_OUT}}}))
    return path


def server_dollars(usage: list[dict]) -> float:
    return sum(u["prompt_tokens"] * PRICE_IN + u["completion_tokens"] * PRICE_OUT for u in usage) / 1e6


def result_of(out: Path, key: str) -> dict:
    return json.loads((out / key / "result.json").read_text())


def cli_models(server) -> list[str]:
    return [
        "--llm",
        "openai:test-model",
        "--vlm",
        "openai:test-model",
        "--base-url",
        server.base_url,
        "--sandbox",
        "process",
        "--refiner",
        "none",
    ]


def test_ledger_sums_to_the_servers_reported_usage_and_prices_it(openai_server, tmp_path):
    openai_server.script(GOOD_BARS, reject("the bars must be orange"), GOOD_BARS_V2, ACCEPT)
    run = tmp_path / "run"
    result = coco_agent.generate(PROMPT, out=run, **settings(openai_server, prices=str(price_file(tmp_path))))
    assert result["status"] == "accepted" and result["rounds"] == 2
    served = openai_server.usage
    assert len(served) == 4
    usage = result["usage"]
    assert usage["calls"] == 4 and usage["failed_calls"] == 0 and usage["calls_without_usage"] == 0
    assert usage["input_tokens"] == sum(u["prompt_tokens"] for u in served)
    assert usage["output_tokens"] == sum(u["completion_tokens"] for u in served)
    assert usage["total_tokens"] == sum(u["total_tokens"] for u in served)
    assert usage["usd"] == pytest.approx(server_dollars(served), rel=1e-6) and usage["price"] == "known"
    assert usage["by_role"]["coder"]["calls"] == 2 and usage["by_role"]["critic"]["calls"] == 2
    assert (
        usage["by_role"]["coder"]["input_tokens"] == served[0]["prompt_tokens"] + served[2]["prompt_tokens"]
    )
    # every call: its record in calls.jsonl, in result.json and in the trace, in the order the server saw them
    records = read_calls(run)
    assert [r["role"] for r in records] == ["coder", "critic", "coder", "critic"]
    assert [r["total_tokens"] for r in records] == [u["total_tokens"] for u in served]
    assert all(r["served_model"] == "test-model" and r["seconds"] >= 0 and r["ok"] for r in records)
    assert [c["id"] for c in result["calls"]] == [r["id"] for r in records]
    trace = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    traced = [c for t in trace for c in t.get("calls") or []]
    assert [c["total_tokens"] for c in traced] == [u["total_tokens"] for u in served]


def test_an_unknown_model_shows_tokens_and_price_unknown_never_a_guess(openai_server, tmp_path):
    # the server says it is gpt-4.1-mini (a model the shipped table prices), but it is served from another
    # address: its price is not the provider's, so no dollars are guessed
    openai_server.served_as = "gpt-4.1-mini"
    openai_server.script(GOOD_BARS, ACCEPT)
    result = coco_agent.generate(PROMPT, out=tmp_path / "run", **settings(openai_server))
    usage = result["usage"]
    assert usage["usd"] is None and usage["total_tokens"] == sum(
        u["total_tokens"] for u in openai_server.usage
    )
    assert usage["price"].startswith("price unknown for openai:test-model@http://127.0.0.1")
    assert all(c["price"] == "unknown" and c["usd"] is None for c in result["calls"])
    assert {c["served_model"] for c in result["calls"]} == {"gpt-4.1-mini"}


def test_a_token_budget_stops_the_run_mid_way_and_resume_with_a_larger_one_continues(openai_server, tmp_path):
    openai_server.script(GOOD_BARS, reject("the bars must be orange"), GOOD_BARS_V2, ACCEPT)
    run = tmp_path / "run"
    first = coco_agent.generate(PROMPT, out=run, **settings(openai_server, budget_tokens=700))
    assert first["status"] == "budget" and first["rounds"] == 1
    assert len(openai_server.requests) == 2  # round 1's coder and critic; no round 2 was started
    stop = first["budget"]["stop"]
    assert stop["by"] == "tokens" and stop["at"] == "write_code" and "700 tokens" in stop["reason"]
    assert (run / "final.png").exists()  # the best draft so far went on to refinement, flagged budget
    assert first["best_round"] == 1

    again = coco_agent.resume(run, budget_tokens=700)  # no larger budget: nothing is spent
    assert again["status"] == "budget" and "not continued" in again["resume"]
    assert len(openai_server.requests) == 2

    second = coco_agent.resume(run, budget_tokens=50_000)
    assert second["status"] == "accepted" and second["rounds"] == 2
    assert len(openai_server.requests) == 4  # round 1 was not redone
    assert second["usage"]["total_tokens"] == sum(u["total_tokens"] for u in openai_server.usage)
    ids = [r["id"] for r in read_calls(run)]
    assert len(ids) == len(set(ids)) == 4
    assert json.loads((run / "run.json").read_text())["context"]["budget_tokens"] == 50_000


def test_cli_dollar_budget_stops_with_exit_4_and_resume_budget_usd_more_continues(
    openai_server, tmp_path, capsys
):
    openai_server.script(GOOD_BARS, reject("the bars must be orange"), GOOD_BARS_V2, ACCEPT)
    run = tmp_path / "run"
    prices = str(price_file(tmp_path))
    # round 1 costs about $0.0035 at these prices: a budget of $0.003 stops before round 2
    code = main(
        [
            "generate",
            PROMPT,
            "-o",
            str(run),
            "--json",
            "--budget-usd",
            "0.003",
            "--prices",
            prices,
            *cli_models(openai_server),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 5 and result["status"] == "budget" and result["budget"]["stop"]["by"] == "usd"
    assert result["usage"]["usd"] == pytest.approx(server_dollars(openai_server.usage), rel=1e-6)
    assert result["usage"]["usd"] > 0.003
    code = main(["resume", str(run), "--json", "--budget-usd", "1"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["status"] == "accepted" and len(openai_server.requests) == 4
    assert result["usage"]["usd"] == pytest.approx(server_dollars(openai_server.usage), rel=1e-6)


def test_a_deadline_stops_cleanly_before_the_next_call(openai_server, tmp_path):
    openai_server.script(GOOD_BARS, ACCEPT)
    run = tmp_path / "run"
    result = coco_agent.generate(PROMPT, out=run, **settings(openai_server, deadline_s=1e-6))
    assert result["status"] == "budget" and result["budget"]["stop"]["by"] == "deadline"
    assert result["budget"]["stop"]["at"] == "critique"  # the draft rendered; the critic was not called
    assert len(openai_server.requests) == 1 and (run / "final.png").exists()


def test_a_batch_budget_stops_new_prompts_and_lets_the_one_in_flight_finish_its_round(
    openai_server, tmp_path, capsys
):
    openai_server.respond_with(keyed_responder(critic={"a": [reject("the bars must be orange")]}))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in ("a", "b", "c")])
    out = tmp_path / "out"
    args = ["batch", str(prompts), "-o", str(out), "--workers", "1", "--json", "--batch-budget-tokens", "300"]
    code = main([*args, *cli_models(openai_server)])
    err = capsys.readouterr().err
    assert code == 5 and "2 prompt(s) were not started: the batch budget of 300 tokens is spent" in err, err
    summary = json.loads((out / "summary.json").read_text())
    statuses = {row["id"]: row["status"] for row in summary["rows"]}
    # a's round 1 (coder + critic) finished although it passed 300 tokens; its round 2 never started
    assert statuses["a"] == "budget" and result_of(out, "a")["budget"]["stop"]["by"] == "batch"
    assert (out / "a" / "final.png").exists()
    assert statuses["b"] == statuses["c"] == "pending" and len(openai_server.requests) == 2
    assert "300 tokens is spent" in summary["batch_budget"]["stopped"]
    assert summary["usage"]["total_tokens"] == sum(u["total_tokens"] for u in openai_server.usage)
    assert summary["batch_budget"]["tokens"] == summary["usage"]["total_tokens"]
    csv_rows = list(csv.DictReader((out / "summary.csv").open()))
    assert (
        int(csv_rows[0]["input_tokens"]) == summary["usage"]["input_tokens"] and csv_rows[0]["calls"] == "2"
    )
    html = write_report(out).read_text()  # the report shows the batch's and each run's totals
    assert f"<b>{summary['usage']['total_tokens']:,}</b>" in html and "price unknown" in html
    assert "<span class='badge budget'>budget</span>" in html

    # the batch budget was that invocation's: a rerun without one continues `a` where it stopped (its round 2,
    # no call of round 1 redone) and starts b and c
    code = main([*args[:-2], *cli_models(openai_server)])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert code == 0
    how = {e["id"]: e["how"] for e in events if e.get("event") == "prompt"}
    assert how == {"a": "resumed", "b": "started", "c": "started"}, how
    again = result_of(out, "a")
    assert again["status"] == "accepted" and again["rounds"] == 2 and again["budget"] is None, again
    assert len(requests_for(openai_server, "a")) == 2 and len(requests_for(openai_server, "a", "critic")) == 2
    assert any(t.get("why") == "resumed with a larger budget" for t in read_trace(out / "a"))
    assert json.loads((out / "summary.json").read_text())["statuses"]["accepted"] == 3


def test_a_rerun_that_cannot_continue_a_budget_stop_leaves_it_as_published(openai_server, tmp_path, capsys):
    """A run the batch budget stopped, whose checkpoints are gone: the rerun cannot continue it, so it is
    skipped (the event says why), no call is made for it and its result.json stays as it was published."""
    openai_server.respond_with(keyed_responder(critic={"a": [reject("the bars must be orange")]}))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": keyed("a")}])
    out = tmp_path / "out"
    args = ["batch", str(prompts), "-o", str(out), "--workers", "1", "--json", *cli_models(openai_server)]
    assert main([*args, "--batch-budget-tokens", "300"]) == 0
    before = (out / "a" / "result.json").read_text()
    assert json.loads(before)["budget"]["stop"]["by"] == "batch"
    (out / "a" / "checkpoints.sqlite").unlink()
    capsys.readouterr()
    assert main(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (event,) = [e for e in events if e.get("event") == "prompt"]
    assert event["how"] == "skipped" and event["resume"] == "not continued: its checkpoints are gone", event
    assert (out / "a" / "result.json").read_text() == before and len(requests_for(openai_server, "a")) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget-usd", "-1"], "--budget-usd must be more than 0"),
        (["--budget-tokens", "0"], "--budget-tokens must be more than 0"),
        (["--deadline", "-5"], "--deadline must be more than 0"),
        (["--budget-usd", "nan"], "--budget-usd must be a number"),
        (["--budget-usd", "1"], "the price table has none for the coder openai:test-model@"),
    ],
)
def test_bad_budgets_are_usage_errors_that_start_nothing(openai_server, tmp_path, capsys, flags, message):
    run = tmp_path / "run"
    code = main(["generate", PROMPT, "-o", str(run), *flags, *cli_models(openai_server)])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not run.exists() and not openai_server.requests


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON (line 1, column 2"),
        ('{"models": []}', 'expected a JSON object with a "models" object'),
        ('{"models": {"openai:x": {"input": "cheap", "output": 1}}}', "needs 'input' as a number"),
        ('{"models": {"openai:x": {"input": -1, "output": 1}}}', "negative input price"),
    ],
)
def test_a_price_file_that_does_not_parse_is_a_usage_error_naming_the_fix(
    openai_server, tmp_path, capsys, content, message
):
    bad = tmp_path / "prices.json"
    bad.write_text(content)
    run = tmp_path / "run"
    code = main(["generate", PROMPT, "-o", str(run), "--prices", str(bad), *cli_models(openai_server)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(bad) in err and "COCO_PRICES" in err, err
    assert not run.exists() and not openai_server.requests


def test_resume_with_a_negative_budget_is_refused_and_changes_nothing(openai_server, tmp_path, capsys):
    openai_server.script(GOOD_BARS, reject("orange"), GOOD_BARS_V2, ACCEPT)
    run = tmp_path / "run"
    coco_agent.generate(PROMPT, out=run, **settings(openai_server, budget_tokens=700))
    before = (run / "run.json").read_bytes(), (run / CALLS_FILE).read_bytes()
    code = main(["resume", str(run), "--budget-tokens", "-3"])
    assert code == 2 and "--budget-tokens must be more than 0" in capsys.readouterr().err
    assert ((run / "run.json").read_bytes(), (run / CALLS_FILE).read_bytes()) == before
