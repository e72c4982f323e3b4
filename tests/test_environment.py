"""coco_agent.environment: one function reads the environment into a RunContext, with one default-critic rule,
and every front end (the CLI, the graph `langgraph dev` serves, the library) uses it."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict

import pytest
from langgraph.pregel.main import _coerce_context
from support.fixtures_models import ScriptedChatModel
from support.paths import REPO_ROOT
from support.programs import ACCEPT, GOOD_BARS

import coco_agent
from coco_agent.cli import build_parser, main
from coco_agent.cli.options import context_from_args
from coco_agent.context import RunContext
from coco_agent.environment import EnvContext, context_from_env, settle_models

PROMPT = "A bar chart titled 'Quarterly Sales 2025' comparing Q1-Q4 sales: 100, 120, 150, 140"


pytestmark = pytest.mark.usefixtures("no_model_env")


def served_graph():
    """graphs/coco.py's graph, loaded as `langgraph dev` loads it (by file path)."""
    spec = importlib.util.spec_from_file_location("served_coco_graph", REPO_ROOT / "graphs" / "coco.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.graph


def cli_context(*flags: str) -> RunContext:
    return context_from_args(build_parser().parse_args(["generate", "p", *flags]))


def served_context(request: dict) -> RunContext:
    return _coerce_context(served_graph().context_schema, request)


# (environment, CLI flags / request context, expected llm, expected vlm)
CASES = [
    ({}, {}, None, None),  # nothing named: both roles auto-detected when the run starts
    ({"COCO_LLM": "openai:a"}, {}, "openai:a", "openai:a"),  # the critic is the named coder
    ({"COCO_LLM": "openai:a", "COCO_VLM": "openai:b"}, {}, "openai:a", "openai:b"),
    ({"COCO_VLM": "none"}, {"llm": "openai:c"}, "openai:c", "none"),
    (
        {"COCO_LLM": "openai:a"},
        {"llm": "openai:c"},
        "openai:c",
        "openai:c",
    ),  # the flag's coder, as critic too
    ({"COCO_LLM": "openai:a", "COCO_VLM": "openai:b"}, {"vlm": "none"}, "openai:a", "none"),
    ({"COCO_VLM": "openai:b"}, {}, None, "openai:b"),
]


@pytest.mark.parametrize("environ, given, llm, vlm", CASES)
def test_one_rule_for_the_cli_the_served_graph_and_the_library(environ, given, llm, vlm, monkeypatch) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    flags = [f"--{name}={value}" for name, value in given.items()]
    for ctx in (context_from_env(given), cli_context(*flags), served_context(dict(given))):
        assert (ctx.llm, ctx.vlm) == (llm, vlm), type(ctx).__name__


def test_explicit_settings_beat_the_environment_which_beats_the_defaults(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("COCO_OCR", "tesseract")
    monkeypatch.setenv("COCO_CLIP", "none")
    ctx = context_from_env({"clip_model": "ViT-B-32:openai", "max_rounds": 2, "llm": "", "vlm": None})
    assert ctx.base_url == "http://127.0.0.1:9/v1" and ctx.ocr_engine == "tesseract"
    assert ctx.clip_model == "ViT-B-32:openai" and ctx.max_rounds == 2 and ctx.llm is None  # "" = not given
    cli = cli_context("--ocr", "auto", "--max-rounds", "2")
    assert cli.ocr_engine == "auto" and cli.clip_model == "none" and cli.max_rounds == 2
    assert context_from_env(environ={}) == RunContext()  # an empty environment: RunContext's defaults
    with pytest.raises(TypeError):
        context_from_env({"lmm": "typo"})


def test_no_flag_means_runcontexts_default() -> None:
    """The CLI repeats no default: a command without run flags gets RunContext's own values."""
    assert cli_context() == RunContext()
    assert asdict(served_context({})) == asdict(RunContext())
    assert isinstance(served_context({}), EnvContext)


def test_settle_models_detects_the_open_roles_alike(openai_server) -> None:
    openai_server.models = ["first-model", "other"]
    ctx = settle_models(context_from_env({"base_url": openai_server.base_url}))
    assert (ctx.llm, ctx.vlm) == ("openai:first-model", "openai:first-model")
    named = settle_models(context_from_env({"base_url": openai_server.base_url, "llm": "openai:test-model"}))
    assert (named.llm, named.vlm) == ("openai:test-model", "openai:test-model")  # no detection when named


def _critic_models(server) -> list[str]:
    return [
        body["model"]
        for body in server.chat_requests
        if any(isinstance(m.get("content"), list) for m in body.get("messages", []))
    ]


def test_served_graph_and_coco_generate_ask_the_same_critic(openai_server, tmp_path, monkeypatch) -> None:
    """The bug this fixes: with COCO_LLM set and no critic named, `coco generate` asked the coder for its
    critique, while the served graph auto-detected another critic (here the server's first model)."""
    openai_server.models = ["first-model"]
    monkeypatch.setenv("COCO_LLM", "openai:test-model")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)

    openai_server.script(GOOD_BARS, ACCEPT)
    assert main(["generate", PROMPT, "-o", str(tmp_path / "cli"), "--sandbox", "process", "--json"]) == 0
    cli_critics = _critic_models(openai_server)
    cli_result = json.loads((tmp_path / "cli" / "result.json").read_text())

    openai_server.requests.clear()
    openai_server.script(GOOD_BARS, ACCEPT)
    state = served_graph().invoke(
        {"prompt": PROMPT, "run_dir": str(tmp_path / "served")}, context={"sandbox": "process"}
    )
    served_result = json.loads((tmp_path / "served" / "result.json").read_text())
    assert state["status"] == served_result["status"] == cli_result["status"] == "accepted"
    assert _critic_models(openai_server) == cli_critics == ["test-model"]
    assert (
        served_result["models"]
        == cli_result["models"]
        == {"coder": "openai:test-model", "critic": "openai:test-model"}
    )


def test_the_library_uses_the_same_rule(openai_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("COCO_VLM", "none")
    coder = ScriptedChatModel([GOOD_BARS])
    result = coco_agent.generate(PROMPT, out=tmp_path / "lib", llm=coder, sandbox="process")
    assert result["status"] == "accepted" and result["models"]["critic"] == "none"
    assert coder.calls == 1 and openai_server.chat_requests == []
