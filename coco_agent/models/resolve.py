"""Turn a model string ("provider:model", "hf:PATH", "none") into a LangChain chat model, once per process.

Which string a role gets (a flag, COCO_LLM / COCO_VLM, the coder as the critic) is decided before this, in
``coco_agent/environment.py``; an empty one is auto-detected here (``detect_model``). The per-call timeout reaches
every provider whose chat model has a timeout setting (``timeout_kwargs``); ``ignores_timeout`` names those
that have none.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import urllib.parse
import urllib.request
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from coco_agent.errors import ModelChoiceError
from coco_agent.models.sampling import Sampling, construction_kwargs, unsupported

log = logging.getLogger(__name__)

Role = Literal["coder", "critic"]

# The environment variables and flags that name each role's model, as the error messages name them (the
# variables are read by coco_agent/environment.py, not here).
ENV_VARS: dict[str, str] = {"coder": "COCO_LLM", "critic": "COCO_VLM"}
FLAGS: dict[str, str] = {"coder": "--llm", "critic": "--vlm"}
DEFAULT_OPENAI = "openai:gpt-4.1-mini"
DEFAULT_ANTHROPIC = "anthropic:claude-sonnet-5"
OLLAMA_HOST = "127.0.0.1:11434"
DEFAULT_TIMEOUT = 180.0
MAX_RETRIES = 2
# Names chat model classes give their per-request timeout (a field or its alias), in the order tried.
TIMEOUT_FIELDS = ("timeout", "request_timeout", "default_request_timeout", "timeout_s", "timeout_seconds")
DUMMY_API_KEY = "not-needed"
_VISION_HINTS = ("llava", "vision", "-vl", "vl:", "qwen2.5vl", "qwen3-vl", "gemma3", "minicpm-v", "moondream")

_CACHE: dict[tuple[str, str | None, float | None, Any], BaseChatModel] = {}
_LOCK = threading.RLock()


def resolve_model(
    spec: str | BaseChatModel | None,
    role: Role,
    *,
    base_url: str | None = None,
    timeout: float | None = None,
    sampling: Sampling | None = None,
) -> BaseChatModel | None:
    """Return the chat model for `role` ("coder" or "critic"); None when the critic is switched off.

    `spec` is a model instance (returned as is), "none" (critic only), "provider:model" (langchain's
    init_chat_model), "hf:<hub id or dir>" (in-process transformers), or None/"" to auto-detect one
    (``detect_model``; COCO_LLM / COCO_VLM are read before, into the run's context, by
    ``coco_agent.environment.context_from_env``). `base_url` points the openai provider at any
    OpenAI-compatible server. `timeout` (seconds per call) goes to the provider's own timeout setting.
    `sampling` (temperature, max tokens, seed; ``models/sampling.py``) goes to the fields the provider's class
    has. `hf:FILE.gguf` loads a GGUF file. Models are cached per (spec, base_url, timeout, sampling), whatever
    the role.
    """
    if isinstance(spec, BaseChatModel):
        return spec
    if role not in ENV_VARS:
        raise ValueError(f"unknown role {role!r}; expected 'coder' or 'critic'")
    base_url = base_url or None
    text = (spec or "").strip()
    if not text:
        text = detect_model(role, base_url=base_url)
        log.info("auto-detected %s model: %s", role, text)
    if text.lower() == "none":
        if role == "coder":
            raise ModelChoiceError(
                "the code writer needs a model: 'none' only switches off the critic (--vlm none)"
            )
        return None
    key = (text, base_url, timeout, sampling)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(text, base_url=base_url, timeout=timeout, sampling=sampling)
        return _CACHE[key]


def model_for(ctx: Any, role: Role) -> BaseChatModel | None:
    """The model of ``role`` for a run context: its spec, server, per-call timeout and sampling settings."""
    spec = ctx.llm if role == "coder" else ctx.vlm
    return resolve_model(
        spec, role, base_url=ctx.base_url, timeout=ctx.model_timeout_s, sampling=Sampling.of(ctx)
    )


def clear_model_cache() -> None:
    """Forget every cached model (tests; long-lived servers that swap models)."""
    with _LOCK:
        _CACHE.clear()


def describe_model(model: BaseChatModel | None) -> str:
    """A readable "provider:model" label for traces and result.json."""
    if model is None:
        return "none"
    fixed = getattr(model, "coco_label", None)  # a stand-in (replay) that answers for a recorded model
    if isinstance(fixed, str) and fixed:
        return fixed
    try:
        params = model._get_ls_params()
    except Exception:
        params = {}
    provider = params.get("ls_provider") or getattr(model, "_llm_type", type(model).__name__)
    name = params.get("ls_model_name")
    label = f"{provider}:{name}" if name else str(provider)
    base = getattr(model, "openai_api_base", None)
    if base and "api.openai.com" not in str(base):
        label += f"@{base}"
    return label


def detect_model(role: Role, *, base_url: str | None = None) -> str:
    """Pick a model when none was named: a --base-url server's first model, API keys, then Ollama."""
    server = base_url or (None if os.environ.get("OPENAI_API_KEY") else os.environ.get("OPENAI_BASE_URL"))
    if server:
        names = _server_models(server)
        if names:
            return f"openai:{names[0]}"
    if os.environ.get("OPENAI_API_KEY"):
        return DEFAULT_OPENAI
    if os.environ.get("ANTHROPIC_API_KEY"):
        return DEFAULT_ANTHROPIC
    names = _ollama_models()
    if names:
        if role == "critic":
            vision = [n for n in names if any(hint in n.lower() for hint in _VISION_HINTS)]
            names = vision or names
        return f"ollama:{names[0]}"
    raise ModelChoiceError(choice_help(role))


def choice_help(role: Role) -> str:
    """The error text listing every way to choose a model for `role`."""
    flag, env = FLAGS[role], ENV_VARS[role]
    what = "code-writing LLM" if role == "coder" else "critic VLM (it must accept images)"
    lines = [
        f"No {what} was chosen and none could be detected. Choose one of:",
        f"  {flag} PROVIDER:MODEL           e.g. {flag} openai:gpt-4.1-mini, anthropic:claude-sonnet-5, ollama:qwen2.5vl",
        f"  {env}=PROVIDER:MODEL         the same, as an environment variable",
        f"  OPENAI_API_KEY=...           uses {DEFAULT_OPENAI}",
        f"  ANTHROPIC_API_KEY=...        uses {DEFAULT_ANTHROPIC} (pip install langchain-anthropic)",
        f"  Ollama                       `ollama serve` on {OLLAMA_HOST} with a pulled model (pip install langchain-ollama)",
        f"  --base-url URL {flag} openai:MODEL   any OpenAI-compatible server: vLLM, llama.cpp server, LM Studio "
        "(or OPENAI_BASE_URL)",
        f"  {flag} hf:PATH_OR_HUB_ID         an in-process transformers model (pip install 'coco-agent[local]')",
    ]
    if role == "critic":
        lines.append(
            "  --vlm none                   skip the critic; only the deterministic checks judge drafts"
        )
    return "\n".join(lines)


def ignores_timeout(spec: Any, *, base_url: str | None = None) -> str | None:
    """The provider of `spec` when its chat model has no timeout setting, so a per-call timeout cannot reach
    it; None when it has one, or when `spec` is a model instance, "none", empty or names no provider whose
    class can be looked at here (building it then fails with its own message)."""
    if not isinstance(spec, str) or not spec.strip() or spec.strip().lower() == "none":
        return None
    spec = spec.strip()
    if spec.startswith("hf:"):
        return None  # HFChatModel.timeout_s
    provider, _ = _split(spec, base_url)
    cls = _chat_model_class(provider)
    if cls is None or timeout_kwargs(cls, 1.0):
        return None
    return provider


def timeout_kwargs(cls: type, seconds: float) -> dict[str, Any]:
    """The keyword arguments that give chat model class `cls` a per-request timeout of `seconds`: its timeout
    field (by alias when it has one: ChatOpenAI's request_timeout is `timeout`, ChatAnthropic's
    default_request_timeout is `timeout`), else the HTTP client's (ChatOllama's `client_kwargs`); {} when
    it has neither."""
    model_fields = getattr(cls, "model_fields", None) or {}
    for wanted in TIMEOUT_FIELDS:
        for name, info in model_fields.items():
            alias = getattr(info, "alias", None)
            if wanted in (name, alias):
                return {alias or name: seconds}
    if "client_kwargs" in model_fields:
        return {"client_kwargs": {"timeout": seconds}}
    return {}


def _chat_model_class(provider: str | None) -> type | None:
    """The chat model class init_chat_model would build for `provider`; None when it cannot be imported."""
    try:
        from langchain.chat_models.base import _BUILTIN_PROVIDERS
    except ImportError:
        return None
    entry = _BUILTIN_PROVIDERS.get(provider or "")
    if entry is None:
        return None
    module_name, class_name = entry[0], entry[1]
    try:
        return getattr(importlib.import_module(module_name), class_name, None)
    except Exception:  # the integration package is missing (or broken): init_chat_model will say so
        return None


def _build(
    spec: str, *, base_url: str | None, timeout: float | None, sampling: Sampling | None = None
) -> BaseChatModel:
    if spec.startswith("hf:"):
        return _build_hf(spec.removeprefix("hf:").strip(), timeout, sampling)
    provider, model = _split(spec, base_url)
    kwargs = _provider_kwargs(provider, base_url, timeout)
    kwargs |= construction_kwargs(_chat_model_class(provider), sampling)
    try:
        from langchain.chat_models import init_chat_model

        return init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError as error:
        raise ModelChoiceError(f"cannot load '{spec}': {error}") from error
    except Exception as error:
        hint = ""
        if provider == "openai" and not os.environ.get("OPENAI_API_KEY") and "base_url" not in kwargs:
            hint = " (set OPENAI_API_KEY, or --base-url for a local OpenAI-compatible server)"
        raise ModelChoiceError(f"cannot create '{spec}': {error}{hint}") from error


def sampling_gaps(spec: Any, sampling: Sampling | None, *, base_url: str | None = None) -> list[str]:
    """The sampling settings the provider of model string ``spec`` has no field for ([] when all reach it, or
    when ``spec`` is not a string naming a known provider)."""
    if not isinstance(spec, str) or not spec.strip() or spec.strip().lower() == "none" or sampling is None:
        return []
    if spec.strip().startswith("hf:"):
        from coco_agent.models.sampling import FIELDS

        return [s for s in sampling.as_dict() if s not in FIELDS]
    provider, _ = _split(spec.strip(), base_url)
    return unsupported(_chat_model_class(provider), sampling)


def _build_hf(target: str, timeout: float | None = None, sampling: Sampling | None = None) -> BaseChatModel:
    if not target:
        raise ModelChoiceError("hf: needs a hub id or a local directory, e.g. hf:Qwen/Qwen2.5-VL-3B-Instruct")
    try:
        from coco_agent.models.hf_chat import HFChatModel
    except ImportError as error:
        raise ModelChoiceError(
            f"hf:{target} needs torch and transformers: pip install 'coco-agent[local]' ({error})"
        ) from error
    try:
        options: dict[str, Any] = {}
        if sampling is not None:
            if sampling.temperature is not None:
                options["temperature"] = sampling.temperature
            if sampling.max_tokens is not None:
                options["max_new_tokens"] = sampling.max_tokens
            if sampling.seed is not None:
                options["seed"] = sampling.seed
        return HFChatModel(
            model_id=target, timeout_s=timeout if timeout is not None else DEFAULT_TIMEOUT, **options
        )
    except ModelChoiceError:
        raise
    except FileNotFoundError as error:
        raise ModelChoiceError(str(error)) from error
    except ImportError as error:
        raise ModelChoiceError(f"hf:{target}: {error} (pip install 'coco-agent[local]')") from error
    except Exception as error:
        raise ModelChoiceError(f"cannot load hf:{target}: {error}") from error


def _split(spec: str, base_url: str | None) -> tuple[str | None, str]:
    """ "provider:model" -> (provider, model); a bare name goes to openai when a base URL is set, else to the
    provider langchain infers from it (gpt-* openai, claude-* anthropic, ...)."""
    head, sep, tail = spec.partition(":")
    if sep and head in _known_providers():
        return head, tail
    if base_url or os.environ.get("OPENAI_BASE_URL"):
        return "openai", spec
    try:
        from langchain.chat_models.base import _attempt_infer_model_provider

        return _attempt_infer_model_provider(spec), spec
    except ImportError:
        return None, spec  # init_chat_model infers it or explains what it needs


def _known_providers() -> set[str]:
    try:
        from langchain.chat_models.base import _BUILTIN_PROVIDERS

        return set(_BUILTIN_PROVIDERS)
    except ImportError:
        return {"openai", "anthropic", "ollama", "azure_openai", "groq", "mistralai", "google_genai"}


def _provider_kwargs(provider: str | None, base_url: str | None, timeout: float | None) -> dict[str, Any]:
    """init_chat_model's keyword arguments: the timeout in whatever form the provider's class takes it (every
    provider that has one), quick SDK retries, and the server URL for openai, anthropic, azure and ollama."""
    seconds = timeout if timeout is not None else DEFAULT_TIMEOUT
    cls = _chat_model_class(provider)
    kwargs: dict[str, Any] = timeout_kwargs(cls, seconds) if cls is not None else {}
    if provider in ("openai", "anthropic", "azure_openai"):
        kwargs["max_retries"] = MAX_RETRIES
    if provider == "openai":
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if url:
            kwargs["base_url"] = url
            if not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = DUMMY_API_KEY
    elif provider == "azure_openai" and base_url:
        kwargs["azure_endpoint"] = base_url  # (AzureChatOpenAI refuses base_url)
    elif provider in ("anthropic", "ollama") and base_url:
        kwargs["base_url"] = base_url
    return kwargs


def _server_models(base_url: str) -> list[str]:
    """Model ids an OpenAI-compatible server lists at GET {base_url}/models; [] when it does not answer."""
    payload = _get_json(base_url.rstrip("/") + "/models", timeout=3.0)
    data = payload.get("data") if isinstance(payload, dict) else None
    return [str(item["id"]) for item in data or [] if isinstance(item, dict) and item.get("id")]


def _ollama_models() -> list[str]:
    """Models of an Ollama server on OLLAMA_HOST (default 127.0.0.1:11434); [] when none answers quickly."""
    host = os.environ.get("OLLAMA_HOST", "").strip() or OLLAMA_HOST
    if "://" not in host:
        host = "http://" + host
    parsed = urllib.parse.urlparse(host)
    if parsed.hostname in ("0.0.0.0", "::"):
        host = host.replace(parsed.hostname, "127.0.0.1", 1)
    payload = _get_json(host.rstrip("/") + "/api/tags", timeout=0.5)
    models = payload.get("models") if isinstance(payload, dict) else None
    return [str(m["name"]) for m in models or [] if isinstance(m, dict) and m.get("name")]


def _get_json(url: str, *, timeout: float) -> Any:
    """GET a JSON document; None on any failure. Local hosts bypass proxies."""
    host = urllib.parse.urlparse(url).hostname or ""
    handlers = [urllib.request.ProxyHandler({})] if host in ("127.0.0.1", "localhost", "::1") else []
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url)
    if key := os.environ.get("OPENAI_API_KEY"):
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read(1_000_000))
    except Exception:
        return None
