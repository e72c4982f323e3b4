"""Temperature, seed and max tokens reach every installed provider's real client, and the candidates' varied
copies: each client sends its request to the local server, which records the JSON body on the wire.

The server answers only OpenAI's route; Anthropic's and Ollama's clients get a 404 (their call fails), but their
request body was recorded first, and that body is what the provider's API would have received.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from coco_agent.models import resolve_model
from coco_agent.models.resolve import sampling_gaps
from coco_agent.models.sampling import Sampling, candidate_samplings, varied

pytestmark = pytest.mark.usefixtures("no_model_env")

SAMPLING = Sampling(temperature=0.35, max_tokens=77, seed=123)


def _sent(provider: str, body: dict) -> dict:
    """The temperature, max tokens and seed a request body carries, in the provider's own wire form."""
    if provider == "ollama":
        options = body.get("options") or {}
        return {
            "temperature": options.get("temperature"),
            "max_tokens": options.get("num_predict"),
            "seed": options.get("seed"),
        }
    return {
        "temperature": body.get("temperature"),
        "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        "seed": body.get("seed"),
    }


# what each provider's API has no field for (recorded in result.json by sampling_gaps, never silently dropped)
GAPS = {"openai": [], "azure_openai": [], "anthropic": ["seed"], "ollama": []}


@pytest.mark.parametrize("provider", ["openai", "azure_openai", "anthropic", "ollama"])
def test_sampling_reaches_the_wire(provider, openai_server, monkeypatch) -> None:
    pytest.importorskip(
        {"anthropic": "langchain_anthropic", "ollama": "langchain_ollama"}.get(provider, "openai")
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")  # some key; none leaves the machine
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    openai_server.respond_with(lambda body: "ok")
    spec = f"{provider}:test-model"
    model = resolve_model(spec, "coder", base_url=openai_server.base_url, timeout=5, sampling=SAMPLING)
    try:
        model.invoke([HumanMessage("hi")])
    except Exception:  # Anthropic's and Ollama's routes answer 404: the request is what counts here
        assert provider in ("anthropic", "ollama")
    posts = [r for r in openai_server.requests if r["method"] == "POST"]
    assert posts, "the request never reached the local server"
    sent = _sent(provider, posts[0]["json"])
    gaps = GAPS[provider]
    assert sampling_gaps(spec, SAMPLING, base_url=openai_server.base_url) == gaps
    expected = {k: v for k, v in SAMPLING.as_dict().items() if k not in gaps}
    assert {k: sent[k] for k in expected} == expected, posts[0]["json"]

    # the k-th candidate of a round: its own temperature and seed, the run's max tokens
    openai_server.requests.clear()
    second = candidate_samplings(SAMPLING, 2)[1]
    try:
        varied(model, second).invoke([HumanMessage("hi")])
    except Exception:
        assert provider in ("anthropic", "ollama")
    sent = _sent(provider, [r for r in openai_server.requests if r["method"] == "POST"][0]["json"])
    assert sent["temperature"] == second["temperature"] != SAMPLING.temperature
    assert sent["max_tokens"] == SAMPLING.max_tokens
    if "seed" not in gaps:
        assert sent["seed"] == second["seed"] == SAMPLING.seed + 1


def test_unset_settings_stay_the_providers_defaults(openai_server) -> None:
    """Nothing asked, nothing sent: the server's own defaults apply."""
    openai_server.respond_with(lambda body: "ok")
    model = resolve_model("openai:test-model", "coder", base_url=openai_server.base_url, sampling=Sampling())
    model.invoke([HumanMessage("hi")])
    body = openai_server.chat_requests[-1]
    assert not {"seed", "max_tokens", "max_completion_tokens"} & set(body), body
