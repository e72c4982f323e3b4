"""Environment fixtures: a test process that sees no model settings of the machine it runs on."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from coco_agent.environment import ENV_VARS
from coco_agent.models import clear_model_cache

PROVIDER_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY")


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No COCO_* model variable, no provider key, no reachable Ollama, an empty model cache."""
    for name in (*PROVIDER_VARS, *ENV_VARS.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")  # no Ollama, whatever runs here
    clear_model_cache()
    yield
    clear_model_cache()
