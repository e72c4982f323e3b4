"""Helpers for the batch and report tests: prompts files, a per-prompt scripted server, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.programs import ACCEPT, GOOD_BARS

KEY = re.compile(r"KEY-([A-Za-z0-9_-]+)")
CLEAN_ENV_PREFIXES = ("OPENAI", "ANTHROPIC", "COCO_", "LANGSMITH", "LANGCHAIN")


def clean_env() -> dict[str, str]:
    """This process's environment without model keys, coco settings or tracing switches."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_ENV_PREFIXES)}


def coco(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )


def model_args(server, vlm: str = "none") -> list[str]:
    critic = "openai:test-model" if vlm == "server" else vlm
    return [
        "--llm",
        "openai:test-model",
        "--vlm",
        critic,
        "--base-url",
        server.base_url,
        "--sandbox",
        "process",
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def keyed(key: str, what: str = "A bar chart of quarterly sales") -> str:
    """A prompt the scripted server can recognise in requests (``KEY-<key>``)."""
    return f"{what}, labelled KEY-{key}"


def is_critic_request(body: dict[str, Any]) -> bool:
    return any(isinstance(m.get("content"), list) for m in body.get("messages", []))


def request_key(body: dict[str, Any]) -> str | None:
    """The KEY-<key> of the prompt a chat request is about."""
    found = KEY.search(json.dumps(body.get("messages", [])))
    return found.group(1) if found else None


def keyed_responder(
    coder: dict[str, list[Any]] | None = None,
    critic: dict[str, list[Any]] | None = None,
    default_code: Any = GOOD_BARS,
    default_verdict: Any = ACCEPT,
) -> Callable[[dict[str, Any]], Any]:
    """Answer each request by its prompt's key: scripted replies per key (in order), then the defaults."""
    queues = {
        "coder": {k: list(v) for k, v in (coder or {}).items()},
        "critic": {k: list(v) for k, v in (critic or {}).items()},
    }

    def respond(body: dict[str, Any]) -> Any:
        role = "critic" if is_critic_request(body) else "coder"
        queue = queues[role].get(request_key(body) or "", [])
        if queue:
            item = queue.pop(0)
            return item(body) if callable(item) else item
        return default_verdict if role == "critic" else default_code

    return respond


def requests_for(server, key: str, role: str = "coder") -> list[dict[str, Any]]:
    """The chat requests (bodies) the server got for one prompt key and role."""
    want_critic = role == "critic"
    return [b for b in server.chat_requests if request_key(b) == key and is_critic_request(b) == want_critic]
