"""`coco generate` / `coco resume` end to end: the real CLI, the real langchain-openai client, a local
OpenAI-compatible server, and the Docker sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.fixtures_env import closed_port
from support.fixtures_models import Slow
from support.programs import ACCEPT, GOOD_BARS, GOOD_BARS_V2, PROSE, reject

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


def coco(*args: str, timeout: float = 240, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC", "COCO_"))}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def model_args(server, *extra: str) -> list[str]:
    return ["--llm", "openai:test-model", "--vlm", "openai:test-model", "--base-url", server.base_url, *extra]


def is_critic_request(body: dict) -> bool:
    return any(isinstance(m.get("content"), list) for m in body.get("messages", []))


@pytest.mark.docker
def test_generate_end_to_end_with_a_rejection(openai_server, docker_sandbox, tmp_path):
    problem = "the bars must be orange"
    openai_server.script(GOOD_BARS, reject(problem), GOOD_BARS_V2, ACCEPT)
    run_dir = tmp_path / "sales"
    proc = coco(
        "generate", PROMPT, "-o", str(run_dir), "--sandbox", "docker", "--json", *model_args(openai_server)
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "accepted" and result["rounds"] == 2 and result["sandbox"] == "docker"
    assert result["models"] == {"coder": "openai:test-model", "critic": "openai:test-model"}
    assert (run_dir / "final.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("code.py", "draft.png", "critique.json"):
        assert (run_dir / "attempts/01" / name).exists() and (run_dir / "attempts/02" / name).exists()
    requests = openai_server.chat_requests
    assert [is_critic_request(r) for r in requests] == [False, True, False, True]
    assert openai_server.image_urls(1)[0].startswith("data:image/png;base64,")
    assert problem in json.dumps(requests[2]["messages"])  # the critique went back to the code writer
    trace = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert {"node", "seconds", "round"} <= set(trace[1])
    assert [t.get("decision") for t in trace if t["node"] == "critique"] == ["write_code", "refine"]
    assert proc.stdout.count("\n") > 5 and "Traceback" not in proc.stderr


def test_http_500_fails_with_a_clear_message(openai_server, tmp_path):
    openai_server.respond_with(
        lambda body: (500, {"error": {"message": "upstream exploded", "type": "server_error"}})
    )
    proc = coco("generate", PROMPT, "-o", str(tmp_path / "r"), "--json", *model_args(openai_server))
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["status"] == "failed" and "code writer" in result["error"] and "500" in result["error"]
    assert "Traceback" not in proc.stderr


def test_model_timeout_fails_with_a_clear_message(openai_server, tmp_path):
    openai_server.respond_with(lambda body: Slow(4, GOOD_BARS))
    proc = coco(
        "generate",
        PROMPT,
        "-o",
        str(tmp_path / "r"),
        "--json",
        "--model-timeout",
        "1",
        *model_args(openai_server),
    )
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["status"] == "failed"
    assert "timed out" in result["error"].lower() or "timeout" in result["error"].lower()


def test_prose_only_model_fails_after_max_rounds(openai_server, tmp_path):
    openai_server.respond_with(lambda body: PROSE)
    proc = coco(
        "generate",
        PROMPT,
        "-o",
        str(tmp_path / "r"),
        "--json",
        "--max-rounds",
        "2",
        *model_args(openai_server),
    )
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["status"] == "failed" and "no draft rendered" in result["error"]
    assert len(openai_server.chat_requests) == 2
    assert "no program" in json.dumps(openai_server.chat_requests[1]["messages"])


@pytest.mark.parametrize("prompt, needle", [("", "empty"), ("y" * 100_000, "characters long")])
def test_bad_prompt_exits_nonzero_with_message(openai_server, tmp_path, prompt, needle):
    proc = coco("generate", prompt, "-o", str(tmp_path / "r"), *model_args(openai_server))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    result = json.loads((tmp_path / "r/result.json").read_text())
    assert result["status"] == "failed" and needle in result["error"]
    assert openai_server.chat_requests == []  # no model call for a prompt that cannot be drawn


def test_existing_run_dir_is_refused(openai_server, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r/run.json").write_text("{}")
    proc = coco("generate", PROMPT, "-o", str(tmp_path / "r"), *model_args(openai_server))
    assert proc.returncode == 2 and "coco resume" in proc.stderr


def test_no_model_named_lists_the_ways_to_choose(tmp_path):
    """A usage error before anything runs (exit 2), with every way to choose, in full."""
    no_ollama = f"127.0.0.1:{closed_port()}"
    proc = coco("generate", PROMPT, "-o", str(tmp_path / "r"), "--json", OLLAMA_HOST=no_ollama)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    for way in ("--llm", "COCO_LLM", "OPENAI_API_KEY", "Ollama", "--base-url", "hf:"):
        assert way in proc.stderr, way
    assert not (tmp_path / "r").exists()


def test_auto_detected_models_are_recorded(openai_server, tmp_path):
    """No --llm/--vlm: the --base-url server's first model is chosen up front and named in every record."""
    openai_server.models = ["served-model", "other"]
    openai_server.script(GOOD_BARS, ACCEPT)
    run = tmp_path / "r"
    proc = coco(
        "generate", PROMPT, "-o", str(run), "--base-url", openai_server.base_url, "--sandbox", "process"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((run / "result.json").read_text())
    assert result["models"] == {"coder": "openai:served-model", "critic": "openai:served-model"}
    context = json.loads((run / "run.json").read_text())["context"]
    assert context["llm"] == context["vlm"] == "openai:served-model"


@pytest.mark.docker
def test_sigkill_then_resume_redoes_no_finished_node(openai_server, docker_sandbox, tmp_path):
    """Kill -9 while the critic thinks; `coco resume` asks the critic again but never the code writer."""
    openai_server.script(GOOD_BARS, Slow(60, ACCEPT))
    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "coco_agent.cli", "generate", PROMPT, "-o", str(run_dir), "--json"]
    proc = subprocess.Popen(
        [*args, *model_args(openai_server)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while len(openai_server.chat_requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(openai_server.chat_requests) == 2, "the critic was never asked"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run_dir / "result.json").exists()
    openai_server._queue.clear()
    openai_server.script(ACCEPT)
    resumed = coco("resume", str(run_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "accepted" and result["rounds"] == 1
    coder_calls = [r for r in openai_server.chat_requests if not is_critic_request(r)]
    assert len(coder_calls) == 1
    assert Path(run_dir / "final.png").exists()
