"""The ceiling of the LongText-Bench local-OCR proxy: `coco bench longtext` against the local fake model server,
whose "coder" answers a matplotlib program (or, with --format html, an HTML page) drawing each prompt's `text`
verbatim (black on white, wrapped).

What it measures is the OCR engine and the word recovery, not a model: a perfect drawing still loses what the
local OCR misreads. Not the official number (Qwen2.5-VL-7B reads the official one).

    .venv/bin/python scripts/bench_longtext_upper.py --limit 20            # en, rapidocr
    .venv/bin/python scripts/bench_longtext_upper.py --limit 20 --ocr tesseract -o /tmp/lt
    .venv/bin/python scripts/bench_longtext_upper.py --lang zh --limit 20  # zh: characters
    .venv/bin/python scripts/bench_longtext_upper.py --format html --limit 20  # the HTML draft format

Chinese needs a CJK font where the program runs: the Docker sandbox image has one (WenQuanYi Micro Hei); the
process sandbox uses the host's fonts (`--sandbox process` for zh measures tofu unless the host has one).

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.fixtures_models import serve_fake_openai  # noqa: E402
from support.text_renders import html_text_program, text_program  # noqa: E402

from coco_agent.batch import iter_prompts  # noqa: E402
from coco_agent.batch.longtext import find_prompts  # noqa: E402
from coco_agent.cli import main as coco  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", choices=["en", "zh"], default="en")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--ocr", default="auto", choices=["auto", "rapidocr", "tesseract"])
    parser.add_argument("-o", "--out", type=Path, help="batch folder (default: a temp dir)")
    parser.add_argument("--sandbox", default="auto", choices=["auto", "docker", "process"])
    parser.add_argument("--format", default="matplotlib", choices=["matplotlib", "html"])
    args = parser.parse_args()
    items = list(iter_prompts(find_prompts(args.lang), args.limit))
    by_start = {item.prompt[:60]: item for item in items}

    def respond(body: dict[str, Any]) -> str:
        sent = json.dumps(body.get("messages", []), ensure_ascii=False)
        for start, item in by_start.items():
            if json.dumps(start, ensure_ascii=False)[1:-1] in sent:
                return html_text_program(item.texts) if args.format == "html" else text_program(item.texts)
        raise ValueError("a request for no known prompt")

    out = args.out or Path(tempfile.mkdtemp(prefix="longtext-upper-")) / "out"
    with serve_fake_openai() as server:
        server.respond_with(respond)
        return coco(
            [
                "bench", "longtext", "--lang", args.lang, "--limit", str(args.limit), "-o", str(out),
                "--workers", str(args.workers), "--ocr", args.ocr, "--llm", "openai:test-model",
                "--vlm", "none", "--base-url", server.base_url, "--sandbox", args.sandbox,
                "--format", args.format,
            ]
        )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
