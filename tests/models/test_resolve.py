"""Model resolution: spec strings, env vars, auto-detection, the real OpenAI client against a local server."""

from __future__ import annotations

import base64
import io

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from PIL import Image
from support.fixtures_models import ScriptedChatModel, Slow

from coco_agent.models import ModelChoiceError, describe_model, resolve_model
from coco_agent.models.resolve import DEFAULT_ANTHROPIC, DEFAULT_OPENAI

pytestmark = pytest.mark.usefixtures("no_model_env")


def _png_data_url(color: str = "red") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_instance_passes_through() -> None:
    model = ScriptedChatModel(["hi"])
    assert resolve_model(model, "coder") is model
    assert describe_model(model) == "scripted:fake"


def test_none_switches_off_the_critic_only() -> None:
    assert resolve_model("none", "critic") is None
    assert describe_model(None) == "none"
    with pytest.raises(ModelChoiceError, match="code writer needs a model"):
        resolve_model("none", "coder")


def test_nothing_chosen_lists_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelChoiceError) as caught:
        resolve_model(None, "coder")
    message = str(caught.value)
    for way in ("--llm", "COCO_LLM", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "Ollama", "--base-url", "hf:"):
        assert way in message
    with pytest.raises(ModelChoiceError) as caught:
        resolve_model("", "critic")
    assert (
        "--vlm" in str(caught.value) and "COCO_VLM" in str(caught.value) and "--vlm none" in str(caught.value)
    )


def test_env_var_per_role(monkeypatch: pytest.MonkeyPatch) -> None:
    """COCO_LLM / COCO_VLM reach the resolver through the run's context (coco_agent.environment)."""
    from coco_agent.environment import context_from_env

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("COCO_LLM", "openai:coder-model")
    monkeypatch.setenv("COCO_VLM", "none")
    ctx = context_from_env()
    assert describe_model(resolve_model(ctx.llm, "coder")) == "openai:coder-model"
    assert resolve_model(ctx.vlm, "critic") is None
    explicit = context_from_env({"llm": "openai:explicit"})
    assert describe_model(resolve_model(explicit.llm, "coder")) == "openai:explicit"  # flag beats env


def test_auto_detect_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert describe_model(resolve_model(None, "coder")) == DEFAULT_ANTHROPIC
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert describe_model(resolve_model(None, "critic")) == DEFAULT_OPENAI


def test_auto_detect_ollama(openai_server, monkeypatch: pytest.MonkeyPatch) -> None:
    openai_server.models = ["qwen2.5-coder:7b", "llava:13b"]
    monkeypatch.setenv("OLLAMA_HOST", openai_server.base_url.removesuffix("/v1"))
    assert describe_model(resolve_model(None, "coder")) == "ollama:qwen2.5-coder:7b"
    assert (
        describe_model(resolve_model(None, "critic")) == "ollama:llava:13b"
    )  # a vision model for the critic


def test_base_url_detects_the_served_model(openai_server) -> None:
    openai_server.models = ["served-model"]
    model = resolve_model(None, "coder", base_url=openai_server.base_url)
    assert describe_model(model) == f"openai:served-model@{openai_server.base_url}"


def test_openai_compatible_server_gets_text_and_image(openai_server) -> None:
    openai_server.script("looks right", "second answer")
    model = resolve_model("openai:test-model", "critic", base_url=openai_server.base_url, timeout=10)
    url = _png_data_url()
    answer = model.invoke(
        [
            SystemMessage("You are a critic."),
            HumanMessage(
                content=[
                    {"type": "text", "text": "Does it match?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ]
            ),
        ]
    )
    assert answer.content == "looks right"
    body = openai_server.chat_requests[-1]
    assert body["model"] == "test-model"
    assert openai_server.image_urls() == [url]
    assert openai_server.requests[-1]["headers"]["authorization"] == "Bearer not-needed"

    # LangChain's standard image block reaches the server as an image_url part too.
    standard = {"type": "image", "base64": url.split(",", 1)[1], "mime_type": "image/png"}
    assert (
        model.invoke([HumanMessage(content=[{"type": "text", "text": "again"}, standard])]).content
        == "second answer"
    )
    assert openai_server.image_urls()[0].startswith("data:image/png;base64,")


def test_openai_streaming_and_structured_output(openai_server) -> None:
    from pydantic import BaseModel

    class Verdict(BaseModel):
        ok: bool
        problems: list[str]

    model = resolve_model("openai:test-model", "critic", base_url=openai_server.base_url, timeout=10)
    openai_server.script("streamed reply", '{"ok": false, "problems": ["title missing"]}')
    assert "".join(chunk.content for chunk in model.stream("hi")) == "streamed reply"
    assert openai_server.chat_requests[-1]["stream"] is True
    verdict = model.with_structured_output(Verdict).invoke("judge")
    assert verdict == Verdict(ok=False, problems=["title missing"])


def test_http_500_is_retried_then_surfaces(openai_server) -> None:
    model = resolve_model("openai:test-model", "coder", base_url=openai_server.base_url, timeout=10)
    openai_server.script((500, {"error": {"message": "boom"}}), "recovered")
    assert model.invoke("hi").content == "recovered"
    assert len(openai_server.chat_requests) == 2
    openai_server.respond_with(lambda body: (500, {"error": {"message": "still down"}}))
    with pytest.raises(Exception, match="still down"):
        model.invoke("hi")


def test_slow_server_times_out(openai_server) -> None:
    model = resolve_model("openai:test-model", "coder", base_url=openai_server.base_url, timeout=0.2)
    openai_server.respond_with(lambda body: Slow(1.0, "too late"))
    with pytest.raises(Exception, match="(?i)time"):
        model.invoke("hi")


def test_models_are_cached_across_roles(openai_server) -> None:
    first = resolve_model("openai:test-model", "coder", base_url=openai_server.base_url)
    assert resolve_model("openai:test-model", "critic", base_url=openai_server.base_url) is first
    assert (
        resolve_model("openai:test-model", "coder", base_url=openai_server.base_url, timeout=5) is not first
    )
    assert resolve_model("openai:other", "coder", base_url=openai_server.base_url) is not first


def test_bare_model_name_goes_to_the_base_url_server(openai_server) -> None:
    model = resolve_model("my-local-model", "coder", base_url=openai_server.base_url)
    assert describe_model(model).startswith("openai:my-local-model@")


def test_clear_errors_for_bad_specs() -> None:
    with pytest.raises(ModelChoiceError, match="pip install langchain-groq"):
        resolve_model("groq:llama-3", "coder")
    with pytest.raises(ModelChoiceError, match="OPENAI_API_KEY"):
        resolve_model("openai:gpt-4.1-mini", "coder")
    with pytest.raises(ModelChoiceError):
        resolve_model("mystery-model", "coder")
    with pytest.raises(ModelChoiceError, match="hf download"):
        resolve_model("hf:nobody/not-a-cached-model", "coder")


def test_scripted_chat_model_replays_records_and_raises() -> None:
    from langchain_core.messages import AIMessage
    from pydantic import BaseModel

    class Verdict(BaseModel):
        ok: bool

    tool_reply = AIMessage(content="", tool_calls=[{"name": "Verdict", "args": {"ok": True}, "id": "1"}])
    model = ScriptedChatModel(
        ["plain", TimeoutError("scripted timeout"), lambda msgs: f"{len(msgs)} msgs", tool_reply, "prose"]
    )
    image = {"type": "image_url", "image_url": {"url": _png_data_url()}}
    assert model.invoke([HumanMessage(content=[{"type": "text", "text": "see"}, image])]).content == "plain"
    assert model.image_blocks(0) == [image]
    with pytest.raises(TimeoutError, match="scripted timeout"):
        model.invoke("x")
    assert model.invoke([SystemMessage("s"), HumanMessage("h")]).content == "2 msgs"
    assert model.with_structured_output(Verdict).invoke("judge") == Verdict(ok=True)
    raw = model.with_structured_output(Verdict, include_raw=True).invoke("judge")
    assert raw["parsed"] is None and raw["raw"].content == "prose"  # plain text: the caller falls back
    assert model.calls == 5
    with pytest.raises(AssertionError, match="no scripted reply left"):
        model.invoke("one too many")
