"""An in-process transformers chat model (`hf:<hub id or local dir>`) that really shows images to VLMs.

LangChain's ChatHuggingFace drops image content blocks; this adapter decodes them and hands the pictures to
the model's processor. Text-only models get the text (an image becomes the placeholder "[image]"). A ``.gguf``
file loads through transformers' GGUF loader (weights and tokenizer, chat template included, from the file).
Every answer carries its token counts (``usage_metadata``), so the cost ledger counts local models too.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from PIL import Image
from pydantic import PrivateAttr

from coco_agent.models.content import content_parts
from coco_agent.models.gguf import check_gguf, is_gguf
from coco_agent.models.weights import locate_weights

log = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


class HFChatModel(BaseChatModel):
    """A local transformers text LLM or VLM behind LangChain's chat interface.

    Weights load once, when the object is created, from a local directory or the Hugging Face cache
    (never downloaded). Runs on CUDA when available (bf16/fp16), else on CPU (fp32). Generation is
    greedy unless `temperature` > 0. A generation that runs past `timeout_s` seconds is stopped there
    (transformers' ``max_time``) and raises TimeoutError, as a remote model's timeout does.
    """

    model_id: str
    """Hub id or local directory, as the user wrote it."""
    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    device: str | None = None
    """"cuda", "cpu", ...; None picks CUDA when available."""
    timeout_s: float | None = None
    """Seconds one generation may take (`--model-timeout`); None: no limit."""
    seed: int | None = None
    """Seed of the sampler (used when `temperature` > 0); None: torch's current state."""

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _processor: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._load()

    @property
    def is_vision(self) -> bool:
        """True when the loaded model takes images (loaded through a processor)."""
        return self._processor is not None

    @property
    def _llm_type(self) -> str:
        return "hf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "hf"
        params["ls_model_name"] = self.model_id
        return params

    def _load(self) -> None:
        import torch
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        if is_gguf(self.model_id):
            self._load_gguf(check_gguf(Path(self.model_id)), device, dtype)
            return
        path = locate_weights(self.model_id, what="hf model")
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        if config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
            self._processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            self._tokenizer = getattr(self._processor, "tokenizer", None)
            auto_class = transformers.AutoModelForImageTextToText
        else:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            auto_class = transformers.AutoModelForCausalLM
        model = auto_class.from_pretrained(path, local_files_only=True, dtype=dtype)
        self._model = model.to(device).eval()
        self.device = device

    def _load_gguf(self, file: Path, device: str, dtype: Any) -> None:
        """A text model from one GGUF file (de-quantised by transformers); its chat template comes with it."""
        import transformers

        options = {"gguf_file": file.name, "local_files_only": True}
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(file.parent, **options)
            model = transformers.AutoModelForCausalLM.from_pretrained(file.parent, dtype=dtype, **options)
        except Exception as exc:  # a file that passed the header check but that transformers cannot use
            raise ValueError(
                f"transformers cannot load the GGUF file {file} ({type(exc).__name__}: {str(exc)[:300]}); "
                "its architecture may not be supported by transformers' GGUF loader"
            ) from exc
        self._model = model.to(device).eval()
        self.device = device

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            if self.is_vision:
                text, counts = self._generate_vision(messages, **kwargs)
            else:
                text, counts = self._generate_text(messages, **kwargs)
        for marker in stop or []:
            text = text.split(marker, 1)[0]
        usage = {"input_tokens": counts[0], "output_tokens": counts[1], "total_tokens": sum(counts)}
        message = AIMessage(
            content=text, usage_metadata=usage, response_metadata={"model_name": self.model_id}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate_text(self, messages: list[BaseMessage], **kwargs: Any) -> tuple[str, tuple[int, int]]:
        chat = text_chat(messages)
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            prompt = _apply_template(tokenizer, chat)
            inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        else:
            inputs = tokenizer(plain_prompt(chat), return_tensors="pt")
        return self._run(inputs, tokenizer, **kwargs)

    def _generate_vision(self, messages: list[BaseMessage], **kwargs: Any) -> tuple[str, tuple[int, int]]:
        chat, images = vision_chat(messages)
        processor = self._processor
        if getattr(processor, "chat_template", None):
            prompt = _apply_template(processor, chat)
        else:
            image_token = getattr(processor, "image_token", "<image>")
            prompt = plain_prompt(
                [
                    {
                        "role": m["role"],
                        "content": "".join(
                            image_token if c["type"] == "image" else c["text"] for c in m["content"]
                        ),
                    }
                    for m in chat
                ]
            )
        inputs = processor(text=[prompt], images=images or None, return_tensors="pt")
        return self._run(inputs, processor, **kwargs)

    def _run(self, inputs: Any, decoder: Any, **kwargs: Any) -> tuple[str, tuple[int, int]]:
        """Generate; the decoded answer and (prompt tokens, new tokens)."""
        import time

        import torch

        model = self._model
        inputs = inputs.to(model.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        temperature = float(kwargs.get("temperature", self.temperature))
        options: dict[str, Any] = {"max_new_tokens": int(kwargs.get("max_new_tokens", self.max_new_tokens))}
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=self.top_p)
            seed = kwargs.get("seed", self.seed)
            if seed is not None:
                torch.manual_seed(int(seed))
        else:
            options.update(do_sample=False)
        tokenizer = getattr(decoder, "tokenizer", decoder)
        if getattr(tokenizer, "pad_token_id", None) is None and tokenizer.eos_token_id is not None:
            options["pad_token_id"] = tokenizer.eos_token_id
        if self.timeout_s is not None:
            options["max_time"] = float(self.timeout_s)
        started = time.monotonic()
        with torch.inference_mode():
            output = model.generate(**inputs, **options)
        if self.timeout_s is not None and time.monotonic() - started > self.timeout_s:
            raise TimeoutError(f"hf:{self.model_id}: generation timed out after {self.timeout_s:g} s")
        prompt_tokens = int(inputs["input_ids"].shape[1])
        new_tokens = output[:, prompt_tokens:]
        text = decoder.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
        return text, (prompt_tokens, int(new_tokens.shape[1]))


def text_chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as `{"role", "content": str}` dicts; images become "[image]"."""
    chat = []
    for message in messages:
        texts = []
        for part in content_parts(message.content):
            if isinstance(part, Image.Image):
                log.warning("hf text model: an image in the prompt was replaced by '[image]'")
                texts.append("[image]")
            else:
                texts.append(part)
        chat.append({"role": _ROLES.get(message.type, "user"), "content": "\n".join(texts)})
    return chat


def vision_chat(messages: list[BaseMessage]) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """LangChain messages as HF multimodal chat dicts (`{"type": "image"}` placeholders) plus the images."""
    chat: list[dict[str, Any]] = []
    images: list[Image.Image] = []
    for message in messages:
        blocks: list[dict[str, Any]] = []
        for part in content_parts(message.content):
            if isinstance(part, Image.Image):
                images.append(part)
                blocks.append({"type": "image"})
            else:
                blocks.append({"type": "text", "text": part})
        chat.append({"role": _ROLES.get(message.type, "user"), "content": blocks})
    return chat, images


def plain_prompt(chat: list[dict[str, str]]) -> str:
    """A "role: content" transcript for tokenizers without a chat template."""
    lines = [f"{m['role']}: {m['content']}" for m in chat]
    return "\n".join([*lines, "assistant:"])


def _apply_template(owner: Any, chat: list[dict[str, Any]]) -> str:
    """Apply a chat template; fold system messages into the first user turn when the template rejects them."""
    try:
        return owner.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    except Exception:
        if not any(m["role"] == "system" for m in chat):
            raise
    return owner.apply_chat_template(_fold_system(chat), tokenize=False, add_generation_prompt=True)


def _fold_system(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    system = [m["content"] for m in chat if m["role"] == "system"]
    rest = [dict(m) for m in chat if m["role"] != "system"]
    if not rest or rest[0]["role"] != "user":
        rest.insert(0, {"role": "user", "content": "" if isinstance(system[0], str) else []})
    first = rest[0]
    if isinstance(first["content"], str):
        first["content"] = "\n\n".join([*(str(s) for s in system), first["content"]]).strip()
    else:
        first["content"] = [block for s in system for block in s] + list(first["content"])
    return rest
