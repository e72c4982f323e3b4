"""LangChain message content: text out of an answer, image blocks in and out of requests."""

from __future__ import annotations

import base64
import binascii
import io
import urllib.request
from pathlib import Path
from typing import Any

from PIL import Image

from coco_agent.sandbox.base import SandboxLimits
from coco_agent.sandbox.png import PNG_SIGNATURE, ImageRejected, decode_png, read_bounded, read_png

Part = str | Image.Image
LIMITS = SandboxLimits()  # the caps an image in a message is decoded with (the sandbox's defaults)


def content_parts(content: str | list[Any]) -> list[Part]:
    """Split message content into text strings and decoded images, in order.

    Understands plain strings, ``{"type": "text"}``, OpenAI's ``{"type": "image_url"}``, LangChain's
    standard ``{"type": "image", "base64" | "url" | "data": ...}`` and Anthropic's ``{"type": "image",
    "source": {...}}`` blocks. Other block types (tool calls, reasoning) are skipped.
    """
    if isinstance(content, str):
        return [content] if content else []
    parts: list[Part] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                parts.append(str(block["text"]))
            elif kind in ("image_url", "image"):
                parts.append(image_from_block(block))
    return parts


def image_from_block(block: dict[str, Any]) -> Image.Image:
    """Decode one image content block to an RGB PIL image."""
    if block.get("type") == "image_url":
        ref = block.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        return _image_from_url(str(url))
    source = block.get("source")
    if isinstance(source, dict):  # Anthropic form
        if source.get("type") == "base64":
            return _image_from_bytes(_b64(source.get("data", "")))
        return _image_from_url(str(source.get("url", "")))
    if block.get("base64"):
        return _image_from_bytes(_b64(block["base64"]))
    if block.get("source_type") == "base64" and block.get("data"):
        return _image_from_bytes(_b64(block["data"]))
    url = block.get("url") or (block.get("data") if block.get("source_type") == "url" else None)
    if url:
        return _image_from_url(str(url))
    raise ValueError(f"cannot read the image in content block with keys {sorted(block)}")


def _image_from_url(url: str) -> Image.Image:
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise ValueError("only base64 data URLs are supported for images")
        return _image_from_bytes(_b64(payload))
    if url.startswith(("http://", "https://")):
        with urllib.request.urlopen(url, timeout=30) as response:  # an image the caller named explicitly
            return _image_from_bytes(response.read())
    path = Path(url.removeprefix("file://"))
    if path.is_file():
        try:
            return _image_from_bytes(read_bounded(path, LIMITS.max_png_bytes))
        except ImageRejected as error:
            raise ValueError(str(error)) from error
    raise ValueError(f"cannot read image from URL {url[:80]!r}")


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"invalid base64 image data: {error}") from error


def _image_from_bytes(data: bytes) -> Image.Image:
    """Decode with the sandbox's caps: a PNG through the checked decoder (chunks walked first, only the image
    itself decoded: never an APNG's other frames), other formats with the pixel count checked before loading."""
    if len(data) > LIMITS.max_png_bytes:
        raise ValueError(f"image of {len(data)} bytes exceeds the {LIMITS.max_png_bytes}-byte limit")
    try:
        if data.startswith(PNG_SIGNATURE):
            return flatten_rgb(decode_png(data, LIMITS.max_pixels, LIMITS.max_png_bytes))
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > LIMITS.max_pixels:
            raise ValueError(f"image of {image.width}x{image.height} pixels exceeds the pixel limit")
        image.load()
    except ImageRejected as error:
        raise ValueError(str(error)) from error
    return flatten_rgb(image)


def flatten_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def message_text(message: Any) -> str:
    """The text of a chat answer, whatever shape its content has (str or list of blocks)."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def png_block(png: bytes) -> dict[str, Any]:
    """An OpenAI-style image content block (understood by langchain's OpenAI, Anthropic and Ollama clients)."""
    data = base64.b64encode(png).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def png_file_block(path: str | Path, limits: SandboxLimits | None = None) -> dict[str, Any]:
    """The image block of a PNG file, checked, decoded and re-encoded on the host with the sandbox's limits
    (see sandbox/png.py): a draft on disk may have been replaced, or come from an older run. Raises
    ImageRejected with the reason."""
    limits = limits or LIMITS
    return png_block(read_png(path, limits.max_pixels, limits.max_png_bytes).png)
