"""scripts/bench_search.py, the simulation of the ``--candidates N`` search, on tiny settings: what follows from
its construction and seed (a writer always right is accepted in round 1, one never right never is, a small
budget stops every run after round 1, the counts add up with the server's, more candidates never accept later
than one) and no timings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from coco_agent.facts.claims import read_claims

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_search.py"
KNOWN = {"accepted", "max_rounds", "budget", "failed"}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_search", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_search"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_search", None)


def run(bench, capsys, *argv: str) -> dict:
    code = bench.main([*argv, "--sandbox", "process", "--ocr", "off", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    return report


def test_the_prompts_read_as_intended_and_each_draw_is_fixed_by_its_seed(bench):
    specs = bench.make_specs(200, seed=0)
    assert len({s.prompt for s in specs}) == 200 and [s.index for s in specs] == list(range(200))
    assert bench.make_specs(200, seed=0) == specs and bench.make_specs(200, seed=1) != specs
    claims = read_claims(specs[7].prompt)
    assert claims.title == specs[7].title and claims.series[0].values == [float(v) for v in specs[7].values]
    right = bench.program(specs[7])
    kinds = set()
    for rnd in (1, 2, 3):
        for cand in range(1, 9):
            assert bench.outcome(0, specs[7], rnd, cand, 1.0) == ("right", right)
            kind, code = bench.outcome(0, specs[7], rnd, cand, 0.0)
            assert kind in bench.MISTAKES and code != right
            assert bench.outcome(0, specs[7], rnd, cand, 0.0) == (kind, code)  # the same draw every time
            kinds.add(kind)
    assert kinds == set(bench.MISTAKES)


def test_a_writer_always_right_is_accepted_in_round_one_with_one_request_each(bench, capsys):
    report = run(bench, capsys, "--prompts", "2", "--candidates", "1,2", "--p", "1.0", "--rounds", "2")
    assert [row["candidates"] for row in report["rows"]] == [1, 2]
    for row in report["rows"]:
        assert row["prompts"] == 2 and row["accepted"] == 2 and row["accepted_pct"] == 100.0
        assert row["accepted_wrong"] == 0 and row["budget_stops"] == 0 and row["statuses"] == {"accepted": 2}
        assert row["server_requests"] == {"writer": 2, "critic": 2}
        for r in row["runs"]:
            assert r["rounds"] == 1 and r["writer_calls"] == 1 and r["critic_calls"] == 1 and r["final_right"]
            assert r["programs"] == row["candidates"]
    assert report["programs_written"] == {"right": 2 + 2 * 2}
    text = bench.table(report)
    assert "| 1 |       2 |" in text and "| 2 |       2 |" in text and "2 (100%)" in text


def test_a_writer_never_right_is_never_accepted(bench, capsys):
    report = run(bench, capsys, "--prompts", "3", "--candidates", "1", "--p", "0", "--rounds", "2")
    (row,) = report["rows"]
    assert row["accepted"] == 0 and set(row["statuses"]) <= {"max_rounds", "failed"}
    assert sum(row["statuses"].values()) == 3
    for r in row["runs"]:  # two rounds fit the default budget: every run uses both
        assert r["rounds"] == 2 and r["writer_calls"] == 2 and r["critic_calls"] <= 2
    assert row["server_requests"]["writer"] == 6
    assert "right" not in report["programs_written"] and sum(report["programs_written"].values()) == 6


def test_a_budget_below_two_rounds_stops_every_run_after_its_first(bench, capsys):
    report = run(
        bench,
        capsys,
        "--prompts",
        "2",
        "--candidates",
        "1",
        "--p",
        "0",
        "--rounds",
        "3",
        "--budget-tokens",
        "500",
    )
    (row,) = report["rows"]
    assert row["statuses"] == {"budget": 2} and row["budget_stops"] == 2
    assert all(r["rounds"] == 1 and r["writer_calls"] == 1 for r in row["runs"])


def test_the_rows_add_up_and_more_candidates_never_accept_later(bench, capsys):
    argv = ("--prompts", "6", "--candidates", "1,2", "--p", "0.5", "--rounds", "2", "--seed", "3")
    report = run(bench, capsys, *argv)
    assert report["settings"]["candidates"] == [1, 2] and len(report["rows"]) == 2
    specs = bench.make_specs(6, seed=3)
    by_n = {}
    for row in report["rows"]:
        runs = row["runs"]
        assert [r["prompt"] for r in runs] == list(range(6))
        assert {r["status"] for r in runs} <= KNOWN and sum(row["statuses"].values()) == 6
        assert row["accepted"] == row["statuses"].get("accepted", 0) and row["accepted_wrong"] == 0
        assert sum(r["writer_calls"] for r in runs) == row["server_requests"]["writer"]
        assert sum(r["critic_calls"] for r in runs) == row["server_requests"]["critic"]
        assert all(r["calls"] == r["writer_calls"] + r["critic_calls"] for r in runs)
        assert all(r["final_right"] for r in runs if r["status"] == "accepted")
        by_n[row["candidates"]] = {r["prompt"]: r for r in runs}
    for spec in specs:
        one, two = by_n[1][spec.index], by_n[2][spec.index]
        first_right = bench.outcome(3, spec, 1, 1, 0.5)[0] == "right"
        if first_right:  # the first candidate of round 1 is the same program whatever N is
            assert one["status"] == two["status"] == "accepted" and one["rounds"] == two["rounds"] == 1
        else:
            assert one["rounds"] == 2 or one["status"] != "accepted"
        if one["status"] == "accepted":  # N=2 draws N=1's program of each round, and one more
            assert two["status"] == "accepted" and two["rounds"] <= one["rounds"]
