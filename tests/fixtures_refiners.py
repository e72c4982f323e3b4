"""Refiner fixtures: tiny random pipelines saved to temp dirs (no download), loaded by the production loader.

FLUX.1 Kontext is built here; Qwen-Image-Edit and the SDXL ControlNet pieces come from the tiny configs of
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

BENCH_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_refine.py"


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


def _tokenizers():
    """A byte-level CLIP tokenizer and a byte-level T5 (Unigram) tokenizer, both built in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import CLIPTokenizer, T5TokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]:
        vocab.setdefault(token, len(vocab))
    clip = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -1.0) for c in alphabet]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    t5 = T5TokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )
    return clip, t5, len(vocab), len(pieces)


@pytest.fixture(scope="session")
def tiny_kontext_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random FluxKontextPipeline (1+1 transformer blocks, 2-level VAE, 2-layer CLIP and T5)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import T5Config, T5EncoderModel

    path = tmp_path_factory.mktemp("tiny-kontext")
    clip_tokenizer, t5_tokenizer, clip_vocab, t5_vocab = _tokenizers()
    torch.manual_seed(0)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=t5_vocab,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
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
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipeline = FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=tiny_clip_text_encoder(clip_vocab),
        tokenizer=clip_tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
    pipeline.save_pretrained(path)
    return path
