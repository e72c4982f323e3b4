"""Refiner fixtures: tiny random pipelines saved to temp dirs (no download), loaded by the production loader.

FLUX.1 Kontext, Qwen-Image-Edit and the SDXL ControlNet pieces come from the tiny configs of
scripts/bench_refine.py (one definition for the benchmark and the tests). The tiny Stable Diffusion img2img
pipeline lives in fixtures_models (`tiny_img2img_dir`); loaded with the ``inpaint:`` prefix it also serves as
the tiny inpainting pipeline.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_refine.py"


@functools.cache
def bench_module() -> ModuleType:
    """scripts/bench_refine.py as a module (its tiny component builders)."""
    spec = importlib.util.spec_from_file_location("bench_refine", BENCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _save(pipeline, path: Path) -> Path:
    pipeline.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_qwen_edit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random QwenImageEditPipeline (Qwen2.5-VL-shaped encoder with a vision tower, 1-block MMDiT)."""
    import torch

    torch.manual_seed(0)
    return _save(bench_module().qwen_edit_pipeline(False), tmp_path_factory.mktemp("tiny-qwen-edit"))


@pytest.fixture(scope="session")
def tiny_sdxl_controlnet_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SDXL pieces: a whole ControlNet img2img pipeline, and a base pipeline with a separate ControlNet."""
    import torch

    torch.manual_seed(0)
    bench = bench_module()
    whole = bench.sdxl_pipeline("sdxl-controlnet", False)
    base = bench.sdxl_pipeline("sdxl", False)
    return {
        "pipeline": _save(whole, tmp_path_factory.mktemp("tiny-sdxl-controlnet")),
        "base": _save(base, tmp_path_factory.mktemp("tiny-sdxl-base")),
        "controlnet": _save(whole.controlnet, tmp_path_factory.mktemp("tiny-controlnet")),
    }


def tiny_clip_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModel(config)


@pytest.fixture(scope="session")
def tiny_kontext_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random FluxKontextPipeline (1+1 transformer blocks, 2-level VAE, 2-layer CLIP and T5)."""
    import torch

    torch.manual_seed(0)
    return _save(bench_module().kontext_pipeline(False), tmp_path_factory.mktemp("tiny-kontext"))
