"""Model fixtures without network or weights: scripted chat models, a local OpenAI-compatible server, and tiny
random transformers / diffusers models saved to temp dirs and loaded by the production loaders.

Use in tests:
- ``ScriptedChatModel(["reply 1", AIMessage(...), TimeoutError("boom"), lambda msgs: "..."])``
- ``openai_server``: ``.base_url``, ``.script(...)``, ``.respond_with(fn)``, ``.requests``, ``.image_urls(i)``
- ``tiny_causal_lm_dir``, ``tiny_vlm_dir``, ``tiny_img2img_dir``: paths (session-scoped)
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

# Tests never reach the Hugging Face hub, whatever a loader would like to do.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# ---------------------------------------------------------------------------------------------------------
# Scripted chat model
# ---------------------------------------------------------------------------------------------------------

Reply = str | AIMessage | BaseException | type[BaseException] | Callable[[list[BaseMessage]], Any]


class ScriptedChatModel(GenericFakeChatModel):
    """A fake chat model that answers from a script, in order, and records what it was sent.

    Each scripted item is a string (the reply text), an AIMessage (e.g. with tool_calls), an exception
    instance or class (raised for that turn: timeouts, HTTP errors), or a callable taking the received
    messages and returning one of those. ``bind_tools`` returns self, so ``with_structured_output`` works:
    a plain-text reply then parses to nothing (None, or a parsing error with include_raw) and the caller
    must fall back; an AIMessage carrying tool_calls parses. Running out of script raises AssertionError.
    """

    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()))
    replies: list[Any] = Field(default_factory=list)
    received: list[list[BaseMessage]] = Field(default_factory=list)
    disable_streaming: bool = True

    def __init__(self, replies: list[Reply] | tuple[Reply, ...] = (), **kwargs: Any) -> None:
        super().__init__(replies=list(replies), **kwargs)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update(ls_provider="scripted", ls_model_name="fake")
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.received.append(list(messages))
        if not self.replies:
            raise AssertionError(f"ScriptedChatModel: no scripted reply left for call {len(self.received)}")
        item = self.replies.pop(0)
        if callable(item) and not isinstance(item, type | BaseException):
            item = item(list(messages))
        if isinstance(item, BaseException) or (isinstance(item, type) and issubclass(item, BaseException)):
            raise item
        message = item if isinstance(item, AIMessage) else AIMessage(content=str(item))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    @property
    def calls(self) -> int:
        """How many times the model was called."""
        return len(self.received)

    def image_blocks(self, call: int = -1) -> list[dict[str, Any]]:
        """The image content blocks (image_url or image) among the messages of one call (default: last)."""
        return [
            block
            for message in self.received[call]
            if isinstance(message.content, list)
            for block in message.content
            if isinstance(block, dict) and block.get("type") in ("image_url", "image")
        ]


# ---------------------------------------------------------------------------------------------------------
# Local OpenAI-compatible server
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Slow:
    """A reply delivered after `seconds` (to exercise client timeouts)."""

    seconds: float
    reply: Any


@dataclass
class FakeOpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 that answers from a script and records every request.

    Scripted items (consumed in order by POST /v1/chat/completions): a string (assistant text); a dict of
    message fields such as ``{"content": "...", "tool_calls": [{"name": "Verdict", "arguments": {...}}]}``;
    ``(status, body)`` or ``(status, body, headers)`` for an HTTP error or raw answer (``{"Retry-After": "1"}``);
    ``Slow(seconds, reply)``; or a callable taking the
    request JSON and returning any of these. When the script is empty, the ``respond_with`` callable answers;
    without one the server answers HTTP 500. Streaming requests get SSE chunks. Every answer reports usage
    the way OpenAI does (prompt_tokens: words and punctuation of the request's text, 85 per image;
    completion_tokens: the same of the answer), also kept in ``usage``; a request with ``n`` gets n choices
    (n successive replies) unless ``honour_n`` is False. A POST to any other path (another
    provider's API: Anthropic's /messages, Ollama's /api/chat) is answered 404 after ``unrouted_delay_s``
    seconds, so any client's timeout can be exercised.
    """

    base_url: str = ""
    models: list[str] = field(default_factory=lambda: ["test-model"])
    unrouted_delay_s: float = 0.0
    honour_n: bool = (
        True  # answer a request's "n" with n choices (False: one choice, as servers that ignore n)
    )
    served_as: str | None = None  # the model id answers name (default: the one asked for)
    requests: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, int]] = field(default_factory=list)  # the usage each answer reported, in order
    _queue: list[Any] = field(default_factory=list)
    _responder: Callable[[dict[str, Any]], Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Any) -> FakeOpenAIServer:
        """Queue replies for the next chat completion requests."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def respond_with(self, responder: Callable[[dict[str, Any]], Any] | None) -> FakeOpenAIServer:
        """Answer requests with `responder(request_json)` whenever the script is empty."""
        self._responder = responder
        return self

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of chat completion requests, in order."""
        return [r["json"] for r in self.requests if r["path"].endswith("/chat/completions")]

    def image_urls(self, index: int = -1) -> list[str]:
        """URLs of the image_url content parts of one chat request (default: the last)."""
        body = self.chat_requests[index]
        return [
            part["image_url"]["url"]
            for message in body.get("messages", [])
            if isinstance(message.get("content"), list)
            for part in message["content"]
            if isinstance(part, dict) and part.get("type") == "image_url"
        ]

    def next_reply(self, body: dict[str, Any]) -> Any:
        with self._lock:
            item = self._queue.pop(0) if self._queue else None
        if item is None:
            if self._responder is None:
                return 500, {
                    "error": {"message": "openai_server: no scripted reply left", "type": "server_error"}
                }
            item = self._responder
        if callable(item):
            item = item(body)
        while isinstance(item, Slow):
            time.sleep(item.seconds)
            item = item.reply
        return item


def count_tokens(text: str) -> int:
    """The fake server's token count: words and punctuation marks (a stand-in for a tokenizer, but exact and
    reproducible, so tests can sum usage)."""
    import re

    return len(re.findall(r"\w+|[^\w\s]", text or ""))


def prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            total += count_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    total += count_tokens(part.get("text", ""))
                elif isinstance(part, dict) and part.get("type") == "image_url":
                    total += 85
        for call in message.get("tool_calls") or []:
            total += count_tokens(json.dumps(call.get("function", {})))
    return total


def _message(reply: Any, number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(reply, dict):
        message.update(reply)
    else:
        message["content"] = str(reply)
    calls = message.get("tool_calls")
    if calls:
        message["tool_calls"] = [
            {
                "id": call.get("id", f"call_{number}_{i}"),
                "type": "function",
                "function": {
                    "name": call.get("name") or call["function"]["name"],
                    "arguments": _arguments(call),
                },
            }
            for i, call in enumerate(calls)
        ]
    return message


def _completion(replies: list[Any], model: str, number: int, prompt: int) -> tuple[dict[str, Any], str]:
    messages = [_message(reply, number) for reply in replies]
    choices, completion = [], 0
    for index, message in enumerate(messages):
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": None})
        completion += count_tokens(message.get("content") or "")
        completion += sum(count_tokens(c["function"]["arguments"]) for c in message.get("tool_calls") or [])
    body = {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return body, choices[0]["finish_reason"]


def _arguments(call: dict[str, Any]) -> str:
    args = call.get("arguments", call.get("function", {}).get("arguments", {}))
    return args if isinstance(args, str) else json.dumps(args)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAIServer  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: Any) -> None:
        with self.fake._lock:
            self.fake.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": body,
                }
            )

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.fake.models]
            self._send_json(200, {"object": "list", "data": data})
        elif self.path.rstrip("/") == "/api/tags":  # Ollama's model list, for auto-detection tests
            self._send_json(200, {"models": [{"name": m, "model": m} for m in self.fake.models]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        self._record(body)
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            time.sleep(self.fake.unrouted_delay_s)
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        reply = self.fake.next_reply(body)
        if isinstance(reply, tuple):
            status, payload, *headers = reply
            self._send_json(int(status), payload, headers[0] if headers else None)
            return
        replies = [reply]
        wanted = int(body.get("n") or 1) if self.fake.honour_n else 1
        for _ in range(wanted - 1):
            more = self.fake.next_reply(body)
            replies.append("" if isinstance(more, tuple) else more)
        model = self.fake.served_as or body.get("model", "test-model")
        completion, finish = _completion(replies, model, len(self.fake.requests), prompt_tokens(body))
        with self.fake._lock:
            self.fake.usage.append(dict(completion["usage"]))
        if body.get("stream"):
            self._send_stream(
                completion, finish, bool((body.get("stream_options") or {}).get("include_usage"))
            )
        else:
            self._send_json(200, completion)

    def _send_stream(self, completion: dict[str, Any], finish: str, usage: bool) -> None:
        message = completion["choices"][0]["message"]
        base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if message.get("content"):
            deltas.append({"content": message["content"]})
        for i, call in enumerate(message.get("tool_calls") or []):
            deltas.append({"tool_calls": [{"index": i, **call}]})
        events = [base | {"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        events.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if usage:
            events.append(base | {"choices": [], "usage": completion["usage"]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@contextlib.contextmanager
def serve_fake_openai() -> Iterator[FakeOpenAIServer]:
    """Run a FakeOpenAIServer on 127.0.0.1:<random port> for the block (fixtures, benchmark scripts)."""
    fake = FakeOpenAIServer()
    handler = type("Handler", (_Handler,), {"fake": fake})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, name="openai-server", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1:<random port>; see FakeOpenAIServer."""
    with serve_fake_openai() as fake:
        yield fake


# ---------------------------------------------------------------------------------------------------------
# Tiny random models (built in memory, saved to temp dirs)
# ---------------------------------------------------------------------------------------------------------

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<image>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}</s>\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def _byte_level_tokenizer() -> Any:
    """A byte-level BPE tokenizer with no merges: every string round-trips, vocab ~260."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<image>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _tiny_llama_config(vocab_size: int) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


@pytest.fixture(scope="session")
def tiny_causal_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama causal LM with a byte-level tokenizer and a chat template, saved to a temp dir."""
    import torch
    from transformers import LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-causal-lm")
    tokenizer = _byte_level_tokenizer()
    torch.manual_seed(0)
    LlamaForCausalLM(_tiny_llama_config(len(tokenizer))).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LLaVA (CLIP vision tower, 16x16 images, 16 image tokens) with its processor, in a temp dir."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    path = tmp_path_factory.mktemp("tiny-vlm")
    tokenizer = _byte_level_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=16,
        patch_size=4,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_tiny_llama_config(len(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(path)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer,
        patch_size=4,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_img2img_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Stable Diffusion img2img pipeline (VAE /2, 2-level UNet, 2-layer CLIP), in a temp dir."""
    return save_tiny_img2img(tmp_path_factory.mktemp("tiny-img2img"))


def save_tiny_img2img(path: Path) -> Path:
    """Build the tiny random img2img pipeline and save it in ``path`` (the fixture; scripts/bench_ray.py)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel

    from support.fixtures_refiners import bench_module, tiny_clip_text_encoder

    tokenizer = bench_module().byte_clip_tokenizer()
    torch.manual_seed(0)
    text_encoder = tiny_clip_text_encoder(len(tokenizer))
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=32,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(path)
    return path
