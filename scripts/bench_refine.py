"""Benchmark refinement per family: seconds per image, peak GPU memory, and our wrapper's overhead.

Pipelines are built from configs with random weights (the arithmetic is the same as the released models), so
no weights are downloaded:

    .venv/bin/python scripts/bench_refine.py                      # GPU: full-size architectures at 1024²
    .venv/bin/python scripts/bench_refine.py --tiny --size 128    # CPU: tiny configs; proves the script runs

Families: sdxl-turbo (img2img, 4 steps, no guidance), sdxl-inpaint (the text-keeping inpainting mode),
sdxl-controlnet (edges of the draft), flux-kontext (instruction editor). For each: seconds per image for the
bare pipeline call at batch 1 and batch 4, the same call through DiffusersRefiner.refine (batch 1), the
overhead of the wrapper over the bare call (goal <= 5%), and peak GPU memory. Tiny-config timings say nothing
about real models: they only show that every code path works.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from coco_agent.refiners.base import RefineRequest  # noqa: E402
from coco_agent.refiners.diffusers_refiner import DiffusersRefiner  # noqa: E402
from coco_agent.refiners.families import FAMILIES  # noqa: E402

FAMILY_NAMES = ("sdxl-turbo", "sdxl-inpaint", "sdxl-controlnet", "flux-kontext", "qwen-image-edit")


# ------------------------------------------------------------------------------------------------------------
# Components from configs (full = released sizes; tiny = a few thousand parameters per block)
# ------------------------------------------------------------------------------------------------------------


def byte_clip_tokenizer() -> Any:
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]:
        vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def byte_t5_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(c, -1.0) for c in sorted(pre_tokenizers.ByteLevel.alphabet())]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return T5TokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )


def clip_text(full: bool, big: bool = False, projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if full:
        width, layers, heads = (1280, 32, 20) if big else (768, 12, 12)
        config = CLIPTextConfig(
            vocab_size=49408,
            hidden_size=width,
            intermediate_size=4 * width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            projection_dim=width,
            hidden_act="gelu" if big else "quick_gelu",
        )
    else:
        config = CLIPTextConfig(
            vocab_size=49408,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=32,
        )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def sdxl_unet(full: bool, in_channels: int = 4) -> Any:
    from diffusers import UNet2DConditionModel

    if full:
        return UNet2DConditionModel(
            sample_size=128,
            in_channels=in_channels,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(320, 640, 1280),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048,
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        cross_attention_dim=64,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,
        norm_num_groups=32,
    )


def vae(full: bool, latent_channels: int = 4, flux: bool = False) -> Any:
    from diffusers import AutoencoderKL

    blocks = (128, 256, 512, 512) if full else (32, 64)
    extra = {"use_quant_conv": False, "use_post_quant_conv": False, "shift_factor": 0.1159} if flux else {}
    return AutoencoderKL(
        block_out_channels=blocks,
        down_block_types=["DownEncoderBlock2D"] * len(blocks),
        up_block_types=["UpDecoderBlock2D"] * len(blocks),
        latent_channels=latent_channels,
        layers_per_block=2 if full else 1,
        scaling_factor=0.3611 if flux else 0.13025,
        **extra,
    )


def sdxl_pipeline(kind: str, full: bool) -> Any:
    from diffusers import (
        ControlNetModel,
        EulerDiscreteScheduler,
        StableDiffusionXLControlNetImg2ImgPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
    )

    components = {
        "vae": vae(full),
        "text_encoder": clip_text(full),
        "text_encoder_2": clip_text(full, big=True, projection=True),
        "tokenizer": byte_clip_tokenizer(),
        "tokenizer_2": byte_clip_tokenizer(),
        "unet": sdxl_unet(full),
        "scheduler": EulerDiscreteScheduler(timestep_spacing="trailing"),
    }
    if kind == "sdxl-inpaint":
        return StableDiffusionXLInpaintPipeline(**components, requires_aesthetics_score=False)
    if kind == "sdxl-controlnet":
        embedding = (16, 32, 96, 256) if full else (16, 32)  # downsampling must match the VAE's
        controlnet = ControlNetModel.from_unet(
            components["unet"], conditioning_embedding_out_channels=embedding
        )
        return StableDiffusionXLControlNetImg2ImgPipeline(**components, controlnet=controlnet)
    return StableDiffusionXLImg2ImgPipeline(**components)


def kontext_pipeline(full: bool) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    if full:
        transformer = FluxTransformer2DModel(guidance_embeds=True)
        t5 = T5Config(vocab_size=32128, d_model=4096, d_ff=10240, num_layers=24, num_heads=64, d_kv=64)
        t5.feed_forward_proj = "gated-gelu"
    else:
        transformer = FluxTransformer2DModel(
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            axes_dims_rope=(4, 4, 8),
        )
        t5 = T5Config(vocab_size=300, d_model=32, d_ff=37, num_layers=2, num_heads=4, d_kv=8)
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=vae(full, latent_channels=16 if full else 4, flux=True),
        text_encoder=clip_text(full),
        tokenizer=byte_clip_tokenizer(),
        text_encoder_2=T5EncoderModel(t5),
        tokenizer_2=byte_t5_tokenizer(),
        transformer=transformer,
    )


def qwen_tokenizer() -> Any:
    """A byte-level Qwen2 tokenizer with the chat and vision special tokens (no merges: longer sequences)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    backend = Tokenizer(
        models.BPE(vocab={c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}, merges=[])
    )
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend, unk_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS)})
    return tokenizer


QWEN_SPECIALS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def qwen_edit_pipeline(full: bool) -> Any:
    """QwenImageEditPipeline: Qwen2.5-VL-7B-shaped text encoder and the 20B MMDiT at full size."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = qwen_tokenizer()
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in QWEN_SPECIALS}
    if full:
        text = {
            "vocab_size": 152064,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        }
        vision = {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 3584,
            "fullatt_block_indexes": [7, 15, 23, 31],
        }
        transformer = QwenImageTransformer2DModel()
        autoencoder = AutoencoderKLQwenImage()
    else:
        text = {
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
        }
        vision = {
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 32,
            "num_heads": 4,
            "out_hidden_size": 32,
            "fullatt_block_indexes": [0],
        }
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=16,
            out_channels=4,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            axes_dims_rope=(8, 4, 4),
        )
        autoencoder = AutoencoderKLQwenImage(
            base_dim=24,
            z_dim=4,
            dim_mult=[1, 2, 4],
            num_res_blocks=1,
            temperal_downsample=[False, True],
            latents_mean=[0.0] * 4,
            latents_std=[1.0] * 4,
        )
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    return QwenImageEditPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=autoencoder,
        text_encoder=Qwen2_5_VLForConditionalGeneration(config),
        tokenizer=tokenizer,
        processor=Qwen2VLProcessor(
            image_processor=Qwen2VLImageProcessor(),
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(),
        ),
        transformer=transformer,
    )


BUILDERS: dict[str, Callable[[bool], Any]] = {
    "sdxl-turbo": lambda full: sdxl_pipeline("sdxl-turbo", full),
    "sdxl-inpaint": lambda full: sdxl_pipeline("sdxl-inpaint", full),
    "sdxl-controlnet": lambda full: sdxl_pipeline("sdxl-controlnet", full),
    "flux-kontext": kontext_pipeline,
    "qwen-image-edit": qwen_edit_pipeline,
}
SETTINGS_FAMILY = {
    "sdxl-turbo": "sdxl-turbo",
    "sdxl-inpaint": "inpaint",
    "sdxl-controlnet": "sdxl-controlnet",
    "flux-kontext": "flux-kontext",
    "qwen-image-edit": "qwen-image-edit",
}


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Create parameters directly in `dtype` (a 12B transformer never exists in fp32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build(name: str, full: bool, device: str) -> DiffusersRefiner:
    family = FAMILIES[SETTINGS_FAMILY[name]]
    dtype = (
        torch.float32 if device == "cpu" else (torch.bfloat16 if family.dtype == "bf16" else torch.float16)
    )
    torch.manual_seed(0)
    with default_dtype(dtype), torch.device(device):
        pipeline = BUILDERS[name](full)
    # Schedulers keep their tables on the CPU (built under torch.device(device), they would not)
    pipeline.scheduler = type(pipeline.scheduler).from_config(pipeline.scheduler.config)
    pipeline.to(device=device, dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    return DiffusersRefiner(name, pipeline, family, device, dtype)


# ------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------


def draft_image(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((size // 8, size // 3, size // 2, size - size // 8), fill=(30, 90, 200))
    draw.rectangle((size // 8, size // 16, size - size // 8, size // 5), fill=(20, 20, 20))
    return image


def timed(fns: list[Callable[[], Any]], device: str, repeats: int) -> list[float]:
    """Median seconds of each function over `repeats` interleaved rounds, after one warm-up each.

    Interleaving (A, B, A, B, ...) keeps slow drift of the machine (clocks, other jobs) out of the comparison.
    """
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def steps_for(name: str, overrides: list[str]) -> int | None:
    """The step count for `name` from --steps entries (`N` for all, `FAMILY=N` for one; the last match wins)."""
    chosen = None
    for entry in overrides:
        family, _, count = entry.rpartition("=")
        if family in ("", name):
            chosen = int(count)
    return chosen


def bench_family(name: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    gc.collect()  # the previous family's pipeline
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    built = time.perf_counter()
    refiner = build(name, not args.tiny, device)
    built = time.perf_counter() - built
    draft = draft_image(args.size)
    protect = [(args.size // 8, args.size // 16, args.size - args.size // 8, args.size // 5)]
    request = RefineRequest(
        draft=draft,
        prompt="a polished poster",
        level="medium",
        steps=steps_for(name, args.steps),
        protect=protect,
    )
    call, _ = refiner._call(request, draft)
    if refiner.family.mode == "inpaint":
        from coco_agent.refiners.text_regions import protect_mask

        call["mask_image"] = protect_mask(draft.size, protect)
    call = {k: v for k, v in call.items() if k in refiner._accepts}

    def bare(batch: int) -> Callable[[], Any]:
        def run() -> Any:
            kwargs = dict(call, generator=torch.Generator(device="cpu").manual_seed(0))
            if batch > 1:
                kwargs["num_images_per_prompt"] = batch
            return refiner.pipeline(**kwargs)

        return run

    bare1, wrapped = timed([bare(1), lambda: refiner.refine(request)], device, args.repeats)
    bare4 = timed([bare(4)], device, max(1, args.repeats // 2))[0] / 4 if 4 in args.batch else None
    row = {
        "family": name,
        "settings": SETTINGS_FAMILY[name],
        "size": args.size,
        "steps": call.get("num_inference_steps"),
        "family_steps": refiner.family.steps,
        "strength": call.get("strength"),
        "seconds_per_image_b1": round(bare1, 4),
        "seconds_per_image_b4": None if bare4 is None else round(bare4, 4),
        "refine_seconds_b1": round(wrapped, 4),
        "wrapper_overhead": round((wrapped - bare1) / bare1, 4),
        "build_seconds": round(built, 1),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--families", default=",".join(FAMILY_NAMES), help="comma-separated: " + ", ".join(FAMILY_NAMES)
    )
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU proof that the script works)")
    parser.add_argument("--size", type=int, default=1024, help="draft side in pixels (default 1024)")
    parser.add_argument(
        "--steps",
        nargs="+",
        default=[],
        metavar="N|FAMILY=N",
        help="override step counts: N for every family, FAMILY=N for one (e.g. qwen-image-edit=8)",
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="batch sizes (1 always runs)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--json", action="store_true", help="one JSON line per family instead of a table")
    args = parser.parse_args(argv)
    quiet_libraries()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = torch.cuda.get_device_name() if device == "cuda" else "none (CPU)"
    print(
        f"# device: {gpu}; configs: {'tiny' if args.tiny else 'full-size, random weights'}", file=sys.stderr
    )
    if device == "cpu" and not args.tiny:
        print("# no GPU: full-size configs on the CPU would take hours; use --tiny", file=sys.stderr)
        return 2
    rows = []
    for name in [n.strip() for n in args.families.split(",") if n.strip()]:
        if name not in BUILDERS:
            parser.error(f"unknown family {name!r}; choose from {', '.join(FAMILY_NAMES)}")
        row = bench_family(name, args, device)
        rows.append(row)
        print(json.dumps(row) if args.json else _line(row), flush=True)
    return 0


def quiet_libraries() -> None:
    """No per-call warnings from diffusers/transformers (e.g. CLIP's 77-token notice) in the figures."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def _line(row: dict[str, Any]) -> str:
    b4 = "-" if row["seconds_per_image_b4"] is None else f"{row['seconds_per_image_b4']:.3f}"
    peak = "-" if row["peak_gpu_gib"] is None else f"{row['peak_gpu_gib']:.1f}"
    return (
        f"{row['family']:16} {row['size']}px steps={row['steps']} s/img b1={row['seconds_per_image_b1']:.3f} "
        f"b4={b4} refine()={row['refine_seconds_b1']:.3f} overhead={row['wrapper_overhead']:+.1%} peak GiB={peak}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
