"""What the host's PNG check and re-encoding cost (coco_agent/sandbox/png.py): prints CPU seconds, best of 3.

    python scripts/bench_png.py

Cases: a 1000x800 matplotlib chart, a 4000x4000 one, 32 MB of incompressible noise (the worst a draft under the
default 32 MiB byte cap can be), a PNG of MAX_CHUNKS chunks, and refusals of 100k empty chunks. Columns: the
chunk walk, Pillow's decode, the re-encoding (the host's setting, and zlib level 6 for comparison), sizes.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import hostile_png  # noqa: E402

from coco_agent.sandbox.png import (  # noqa: E402
    COMPRESS,
    MAX_CHUNKS,
    ImageRejected,
    _decode,
    encode_png,
    walk_png,
)

MAX_BYTES, MAX_PIXELS = 32 << 20, 40_000_000


def cpu(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        out = fn()
        best = min(best, time.process_time() - started)
    return best, out


def chart(width: int, height: int, dpi: int) -> bytes:
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    x = np.arange(12)
    ax.bar(x, np.random.default_rng(0).random(12) * 10, color="tab:blue", label="revenue")
    ax.plot(x, np.sin(x) * 4 + 5, "r-o", label="trend")
    ax.set(title="Quarterly revenue by region", xlabel="month", ylabel="revenue (M$)")
    ax.legend()
    ax.grid(True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def noise(side: int) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def main() -> None:
    print(f"re-encoding with {COMPRESS}; MAX_CHUNKS={MAX_CHUNKS}")
    cases = {
        "chart 1000x800": chart(1000, 800, 100),
        "chart 4000x4000": chart(4000, 4000, 400),
        "noise 3260x3260 RGB": noise(3260),
        f"{MAX_CHUNKS} chunks": hostile_png.many_chunks(MAX_CHUNKS - 3),
    }
    print(
        f"{'case':24} {'bytes in':>10} {'walk':>7} {'decode':>7} {'encode':>7} {'bytes out':>10} {'level 6':>7}"
    )
    for name, data in cases.items():
        walk_s, layout = cpu(lambda data=data: walk_png(data, MAX_BYTES))
        decode_s, image = cpu(lambda layout=layout: _decode(layout, MAX_PIXELS))
        encode_s, fresh = cpu(lambda image=image: encode_png(image))
        level6_s, _ = cpu(lambda image=image: image.save(io.BytesIO(), format="PNG"), repeat=1)
        print(
            f"{name:24} {len(data):>10} {walk_s:>6.3f}s {decode_s:>6.3f}s {encode_s:>6.3f}s {len(fresh):>10} "
            f"{level6_s:>6.3f}s"
        )
    for name, data in {
        "100k empty chunks": hostile_png.many_chunks(),
        "100k IDAT": hostile_png.split_idat(),
    }.items():

        def refuse(data=data) -> str:
            try:
                walk_png(data, MAX_BYTES)
            except ImageRejected as exc:
                return str(exc)
            return "accepted"

        seconds, why = cpu(refuse)
        print(f"{name:24} {len(data):>10} refused in {seconds:.4f}s: {why}")


if __name__ == "__main__":
    main()
