"""`hf:` models: tiny random transformers models saved to temp dirs, loaded through resolve_model."""

from __future__ import annotations

import base64
import io

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from PIL import Image

from coco_agent.models import ModelChoiceError, clear_model_cache, describe_model, resolve_model
from coco_agent.models.content import content_parts
from coco_agent.models.hf_chat import HFChatModel, plain_prompt, text_chat


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    clear_model_cache()


def _png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_hf_text_model_generates(tiny_causal_lm_dir) -> None:
    model = resolve_model(f"hf:{tiny_causal_lm_dir}", "coder")
    assert isinstance(model, HFChatModel) and not model.is_vision
    assert describe_model(model) == f"hf:{tiny_causal_lm_dir}"
    answer = model.invoke(
        [SystemMessage("Write Python."), HumanMessage("Draw a bar chart.")], max_new_tokens=8
    )
    assert isinstance(answer, AIMessage) and isinstance(answer.content, str)
    assert resolve_model(f"hf:{tiny_causal_lm_dir}", "critic") is model  # loaded once per process


def test_text_prompt_formats() -> None:
    messages = [
        SystemMessage("sys"),
        HumanMessage(content=[{"type": "text", "text": "look"}, _image_block()]),
    ]
    chat = text_chat(messages)
    assert chat == [{"role": "system", "content": "sys"}, {"role": "user", "content": "look\n[image]"}]
    assert plain_prompt(chat) == "system: sys\nuser: look\n[image]\nassistant:"


def _image_block(color: tuple[int, int, int] = (255, 0, 0)) -> dict:
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _png(color)}}


def test_content_blocks_decode_in_every_form() -> None:
    data = _png((0, 0, 255))
    blocks = [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        {"type": "image_url", "image_url": f"data:image/png;base64,{data}"},
        {"type": "image", "base64": data, "mime_type": "image/png"},
        {"type": "image", "source_type": "base64", "data": data, "mime_type": "image/png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
    ]
    parts = content_parts(blocks)
    assert parts[0] == "a"
    assert all(isinstance(p, Image.Image) and p.getpixel((0, 0)) == (0, 0, 255) for p in parts[1:])


def test_vlm_really_receives_the_image(tiny_vlm_dir) -> None:
    model = resolve_model(f"hf:{tiny_vlm_dir}", "critic")
    assert isinstance(model, HFChatModel) and model.is_vision
    seen: list = []
    tower = model._model.model.vision_tower
    handle = tower.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(args[0] if args else kwargs["pixel_values"]),
        with_kwargs=True,
    )
    try:
        for block in (
            _image_block((255, 0, 0)),
            {"type": "image", "base64": _png((0, 255, 0)), "mime_type": "image/png"},
        ):
            seen.clear()
            message = HumanMessage(content=[{"type": "text", "text": "Does the draft match?"}, block])
            answer = model.invoke([SystemMessage("You judge drafts."), message], max_new_tokens=4)
            assert isinstance(answer.content, str)
            assert len(seen) == 1, "the vision tower must run once, on the prompt's image"
            expected = model._processor.image_processor(
                images=content_parts(message.content)[1:], return_tensors="pt"
            )
            assert seen[0].shape == expected["pixel_values"].shape
            assert (seen[0] - expected["pixel_values"]).abs().max() < 1e-5  # exactly our picture, decoded
    finally:
        handle.remove()


def test_vlm_without_image_still_answers(tiny_vlm_dir) -> None:
    model = resolve_model(f"hf:{tiny_vlm_dir}", "critic")
    assert isinstance(model.invoke("hello", max_new_tokens=3).content, str)


def test_missing_model_says_how_to_get_it(tmp_path) -> None:
    with pytest.raises(ModelChoiceError, match="hf download"):
        resolve_model(f"hf:{tmp_path / 'absent'}", "coder")
    with pytest.raises(ModelChoiceError, match="hub id or a local directory"):
        resolve_model("hf:", "coder")
