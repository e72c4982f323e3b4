"""--model-timeout reaches every provider whose chat model has a timeout setting; the CLI names those without one.

Each installed provider's real client talks to the local server, which answers later than the timeout: the call
must fail with a timeout well before the answer would come.
"""

from __future__ import annotations

import json
import time

import pytest
from langchain_core.messages import HumanMessage
from support.fixtures_models import ScriptedChatModel, Slow
from support.programs import ACCEPT, GOOD_BARS

from coco_agent.cli import main
from coco_agent.models import resolve_model
from coco_agent.models.resolve import ignores_timeout, timeout_kwargs

DELAY = 8.0  # seconds the server waits before answering
TIMEOUT = 0.3  # seconds the client may wait


pytestmark = pytest.mark.usefixtures("no_model_env")


@pytest.mark.parametrize("provider", ["openai", "azure_openai", "anthropic", "ollama"])
def test_a_slow_server_times_out_through_every_installed_provider(
    provider, openai_server, monkeypatch
) -> None:
    pytest.importorskip(
        {"anthropic": "langchain_anthropic", "ollama": "langchain_ollama"}.get(provider, "openai")
    )
    monkeypatch.setenv(
        "ANTHROPIC_API_KEY", "sk-ant-test"
    )  # the clients want some key; none leaves the machine
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    openai_server.unrouted_delay_s = DELAY
    openai_server.respond_with(lambda body: Slow(DELAY, "too late"))
    assert ignores_timeout(f"{provider}:test-model", base_url=openai_server.base_url) is None
    model = resolve_model(f"{provider}:test-model", "coder", base_url=openai_server.base_url, timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)time") as caught:
        model.invoke([HumanMessage("hi")])
    seconds = time.monotonic() - started
    assert seconds < DELAY - 1, (
        provider,
        seconds,
        caught.value,
    )  # the client gave up, the server never answered
    assert openai_server.requests, "the request never reached the local server"


def test_timeout_kwargs_follow_each_class() -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_ollama import ChatOllama
    from langchain_openai import AzureChatOpenAI, ChatOpenAI

    assert timeout_kwargs(ChatOpenAI, 5) == {"timeout": 5}  # request_timeout, alias timeout
    assert timeout_kwargs(AzureChatOpenAI, 5) == {"timeout": 5}
    assert timeout_kwargs(ChatAnthropic, 5) == {"timeout": 5}  # default_request_timeout, alias timeout
    assert timeout_kwargs(ChatOllama, 5) == {"client_kwargs": {"timeout": 5}}  # httpx client
    assert timeout_kwargs(NoTimeoutChat, 5) == {}


def test_hf_generation_stops_at_the_timeout(tiny_causal_lm_dir) -> None:
    model = resolve_model(f"hf:{tiny_causal_lm_dir}", "coder", timeout=1e-4)
    with pytest.raises(TimeoutError, match="timed out"):
        model.invoke([HumanMessage("draw")])
    assert resolve_model(f"hf:{tiny_causal_lm_dir}", "coder", timeout=120).invoke("draw").content is not None


# A provider whose chat model has no timeout setting (registered for these tests only).
SCRIPT: list[str] = []


class NoTimeoutChat(ScriptedChatModel):
    model: str = ""

    def __init__(self, **kwargs):
        super().__init__(list(SCRIPT), **kwargs)


@pytest.fixture
def no_timeout_provider(monkeypatch: pytest.MonkeyPatch) -> str:
    from langchain.chat_models import base

    monkeypatch.setitem(base._BUILTIN_PROVIDERS, "notimeout", (__name__, "NoTimeoutChat", base._call))
    base._get_chat_model_creator.cache_clear()
    yield "notimeout"
    base._get_chat_model_creator.cache_clear()


def test_the_cli_names_a_provider_that_ignores_the_timeout(no_timeout_provider, tmp_path, capsys) -> None:
    SCRIPT[:] = [
        GOOD_BARS,
        ACCEPT,
    ]  # one model (cached once): the coder, then the critic (no --vlm: the coder)
    spec = f"{no_timeout_provider}:model\x1b]0;owned\x07"
    assert ignores_timeout(spec) == no_timeout_provider
    args = ["generate", "bars", "-o", str(tmp_path / "r"), "--llm", spec]
    code = main([*args, "--sandbox", "process", "--json", "--model-timeout", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    warnings = [line for line in err.splitlines() if line.startswith("warning: --model-timeout is ignored")]
    assert len(warnings) == 1 and no_timeout_provider in warnings[0]  # once, though it is coder and critic
    assert "\\x1b]0;owned\\x07" in warnings[0] and "\x1b" not in err  # the spec is shown as data
    assert json.loads(out)["status"] == "accepted"


def test_no_warning_for_providers_with_a_timeout(openai_server, tmp_path, capsys) -> None:
    openai_server.script(GOOD_BARS)
    args = ["generate", "bars", "-o", str(tmp_path / "r"), "--llm", "openai:test-model", "--vlm", "none"]
    code = main([*args, "--base-url", openai_server.base_url, "--sandbox", "process", "--json"])
    assert code == 0
    assert "warning: --model-timeout" not in capsys.readouterr().err
