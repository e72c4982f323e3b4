"""`langgraph dev` loads the graph named in langgraph.json and runs it (loopback only, analytics off)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support.paths import REPO_ROOT
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, body: dict | None = None, timeout: float = 30) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _critic_models(server) -> list[str]:
    return [
        body["model"]
        for body in server.chat_requests
        if any(isinstance(m.get("content"), list) for m in body.get("messages", []))
    ]


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, object]:
    """`langgraph dev` on a free loopback port; (process, base URL, log file) once /ok answers."""
    port = _free_port()
    cli = Path(sys.executable).with_name("langgraph")
    cmd = [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if _call(f"{base}/ok", timeout=2).get("ok"):
                return server, base, log
        except OSError:
            time.sleep(0.5)
    _stop(server, log)
    pytest.fail("langgraph dev did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])


def _stop(server: subprocess.Popen, log) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def _server_env(openai_server) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "ANTHROPIC", "LANGSMITH", "LANGCHAIN", "COCO_"))
    }
    env |= {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "NO_COLOR": "1"}
    return env | {"COCO_LLM": "openai:test-model", "OPENAI_BASE_URL": openai_server.base_url}


def test_langgraph_dev_pauses_for_review_and_the_sdk_resumes_it(tmp_path, openai_server):
    """A run with context review=all pauses at the draft, then at the refined image; the LangGraph SDK sees each
    interrupt (with what waits) and resumes it with Command(resume=...): a rejection reaches the code writer."""
    from langgraph_sdk import get_sync_client

    from coco_agent.rundir import RESULT_FILE, REVIEW_FILE

    server, base, log = _start(tmp_path, _server_env(openai_server))
    try:
        client = get_sync_client(url=base)
        thread = client.threads.create()["thread_id"]
        run_dir = tmp_path / "served-review"
        context = {"sandbox": "process", "review": "all"}
        openai_server.script(GOOD_BARS, ACCEPT)
        state = client.runs.wait(
            thread,
            "coco",
            input={"prompt": "bars", "run_dir": str(run_dir)},
            context=context,
            raise_error=True,
        )
        waiting = client.threads.get_state(thread)
        assert waiting["next"] == ["review_draft"]
        interrupts = [i for task in waiting["tasks"] for i in task["interrupts"]]
        assert interrupts[0]["value"]["point"] == "draft", state
        assert interrupts[0]["value"]["draft"] == "attempts/01/draft.png"
        assert (run_dir / REVIEW_FILE).exists() and not (run_dir / RESULT_FILE).exists()

        openai_server.script(GOOD_BARS_V2, ACCEPT)
        client.runs.wait(
            thread, "coco", command={"resume": {"action": "reject", "feedback": "orange bars, please"}},
            context=context,
        )  # fmt: skip
        assert "orange bars, please" in json.dumps(openai_server.chat_requests[2]["messages"])
        waiting = client.threads.get_state(thread)
        assert [i["value"]["draft"] for t in waiting["tasks"] for i in t["interrupts"]] == [
            "attempts/02/draft.png"
        ]
        client.runs.wait(thread, "coco", command={"resume": {"action": "accept"}}, context=context)
        waiting = client.threads.get_state(thread)
        assert [i["value"]["point"] for t in waiting["tasks"] for i in t["interrupts"]] == ["refine"]
        final = client.runs.wait(thread, "coco", command={"resume": {"action": "accept"}}, context=context)
        assert final["status"] == "accepted" and final["round"] == 2
        result = json.loads((run_dir / RESULT_FILE).read_text())
        assert result["status"] == "accepted" and not (run_dir / REVIEW_FILE).exists()
        assert [r["action"] for a in result["attempts"] for r in a["reviews"]] == [
            "reject",
            "accept",
            "accept",
        ]
    finally:
        _stop(server, log)


def test_langgraph_dev_serves_and_runs_the_graph(tmp_path, openai_server):
    """The served graph runs, and in the same environment picks the models `coco generate` picks: COCO_LLM
    names the coder and, with no critic named, the critic too (not the server's first model, auto-detected)."""
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "ANTHROPIC", "LANGSMITH", "LANGCHAIN", "COCO_"))
    }
    env |= {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "NO_COLOR": "1"}
    openai_server.models = ["first-model"]
    env |= {"COCO_LLM": "openai:test-model", "OPENAI_BASE_URL": openai_server.base_url}
    cli = Path(sys.executable).with_name("langgraph")
    cmd = [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if _call(f"{base}/ok", timeout=2).get("ok"):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("langgraph dev did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
        assistants = _call(f"{base}/assistants/search", {})
        assert [a["graph_id"] for a in assistants] == ["coco"]
        graph = _call(f"{base}/assistants/{assistants[0]['assistant_id']}/graph")
        nodes = {n["id"] for n in graph["nodes"]}
        assert {"prepare", "write_code", "execute", "check", "critique", "refine", "finalize"} <= nodes
        run_dir = tmp_path / "served-run"
        state = _call(
            f"{base}/runs/wait",
            {
                "assistant_id": "coco",
                "input": {"prompt": "  ", "run_dir": str(run_dir)},
                "context": {"vlm": "none"},
            },
            timeout=60,
        )
        assert state["status"] == "failed" and "empty" in state["error"]
        assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"

        openai_server.script(GOOD_BARS, ACCEPT)
        served_dir = tmp_path / "served-bars"
        state = _call(
            f"{base}/runs/wait",
            {
                "assistant_id": "coco",
                "input": {"prompt": "bars", "run_dir": str(served_dir)},
                "context": {"sandbox": "process"},
            },
            timeout=120,
        )
        assert state["status"] == "accepted", state.get("error")
        served = json.loads((served_dir / "result.json").read_text())
        served_critics = _critic_models(openai_server)
        assert served_critics == ["test-model"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    openai_server.requests.clear()
    openai_server.script(GOOD_BARS, ACCEPT)
    cli_dir = tmp_path / "cli-bars"
    cli = [
        sys.executable,
        "-m",
        "coco_agent.cli",
        "generate",
        "bars",
        "-o",
        str(cli_dir),
        "--sandbox",
        "process",
    ]
    proc = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _critic_models(openai_server) == served_critics
    assert (
        json.loads(proc.stdout)["models"]
        == served["models"]
        == {
            "coder": "openai:test-model",
            "critic": "openai:test-model",
        }
    )
