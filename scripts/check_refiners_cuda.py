"""Load every refiner family through the production loader and refine one draft, on whatever device is there.

Tiny random pipelines (the configs of scripts/bench_refine.py) are saved to a temp dir and loaded back with
`load_refiner` (directory, ``inpaint:`` and ``controlnet:CONTROLNET+BASE`` forms), so on a GPU machine this proves
the CUDA path end to end: the family's dtype (fp16/bf16), the pipeline on the device, a CPU generator, the
output at the draft's size. Prints one JSON line per family; exits 1 if any failed.

    .venv/bin/python scripts/check_refiners_cuda.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_refine import kontext_pipeline, quiet_libraries, qwen_edit_pipeline, sdxl_pipeline  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from coco_agent.refiners import RefineRequest, clear_refiner_cache, load_refiner  # noqa: E402


def draft() -> Image.Image:
    image = Image.new("RGB", (96, 80), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 30, 50, 70), fill=(30, 90, 200))
    draw.text((10, 6), "SALE", fill="black")
    return image


def denoiser_parameter(pipeline) -> torch.Tensor:
    """One weight of the pipeline's denoiser (transformer or UNet): where and in what dtype it runs."""
    denoiser = getattr(pipeline, "transformer", None) or pipeline.unet
    return next(denoiser.parameters())


def saved(root: Path) -> dict[str, str]:
    """Refiner names to load, each backed by a tiny pipeline saved under `root`."""
    torch.manual_seed(0)
    paths = {}
    for name, build in (
        ("sdxl", lambda: sdxl_pipeline("sdxl-turbo", False)),
        ("controlnet-pipeline", lambda: sdxl_pipeline("sdxl-controlnet", False)),
        ("kontext", lambda: kontext_pipeline(False)),
        ("qwen-edit", lambda: qwen_edit_pipeline(False)),
    ):
        pipeline = build()
        pipeline.save_pretrained(root / name)
        if name == "controlnet-pipeline":
            pipeline.controlnet.save_pretrained(root / "controlnet")
        paths[name] = str(root / name)
    return {
        "sdxl img2img": paths["sdxl"],
        "sdxl inpaint": "inpaint:" + paths["sdxl"],
        "sdxl controlnet (saved pipeline)": paths["controlnet-pipeline"],
        "sdxl controlnet (joined)": f"controlnet:{root / 'controlnet'}+{paths['sdxl']}",
        "flux kontext": paths["kontext"],
        "qwen image edit": paths["qwen-edit"],
    }


def main() -> int:
    quiet_libraries()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"# device: {device}", file=sys.stderr)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, name in saved(Path(tmp)).items():
            started = time.perf_counter()
            try:
                refiner = load_refiner(name)
                request = RefineRequest(draft=draft(), prompt="a sale poster", level="medium", steps=2)
                output = refiner.refine(request)
                params = denoiser_parameter(refiner.pipeline)
                row = {
                    "refiner": label,
                    "ok": output.image.size == (96, 80),
                    "family": refiner.family.name,
                    "pipeline": type(refiner.pipeline).__name__,
                    "device": str(params.device),
                    "dtype": str(params.dtype).removeprefix("torch."),
                    "settings_dtype": output.settings.get("dtype"),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            except Exception as exc:  # report and go on with the next family
                row = {
                    "refiner": label,
                    "ok": False,
                    "error": repr(exc),
                    "trace": traceback.format_exc()[-800:],
                }
            failed += not row["ok"]
            print(json.dumps(row), flush=True)
            clear_refiner_cache()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
