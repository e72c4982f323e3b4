"""The tesseract backend: the Debian `tesseract-ocr` binary, word boxes from its TSV output, grouped by line."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections import defaultdict

from PIL import Image

from coco_agent.scoring.ocr_result import OcrLine, OcrResult, OcrUnavailable

TIMEOUT_S = 120


class TesseractEngine:
    """Runs `tesseract` once per image (sparse-text layout: charts and posters scatter their labels)."""

    name = "tesseract"
    label = "tesseract (local OCR proxy)"

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("tesseract")
        if not self.binary:
            raise OcrUnavailable("tesseract is not installed: apt-get install tesseract-ocr")
        self.languages = _languages(self.binary)

    def read(self, image: Image.Image) -> OcrResult:
        start = time.perf_counter()
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        command = [self.binary, "stdin", "stdout", "--psm", "11", "-l", self.languages, "tsv"]
        done = subprocess.run(command, input=buffer.getvalue(), capture_output=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"tesseract failed: {done.stderr.decode(errors='replace')[-300:]}")
        lines = parse_tsv(done.stdout.decode("utf-8", errors="replace"))
        return OcrResult(engine=self.name, lines=lines, seconds=round(time.perf_counter() - start, 3))


def parse_tsv(tsv: str) -> list[OcrLine]:
    """Group tesseract's word rows (level 5) into lines with their bounding boxes and mean confidence."""
    groups: dict[tuple[str, ...], list[tuple[str, int, int, int, int, float]]] = defaultdict(list)
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        left, top, width, height = (int(v) for v in cells[6:10])
        key = (cells[1], cells[2], cells[3], cells[4])
        groups[key].append((cells[11].strip(), left, top, width, height, float(cells[10])))
    lines = []
    for words in groups.values():
        x0 = min(w[1] for w in words)
        y0 = min(w[2] for w in words)
        x1 = max(w[1] + w[3] for w in words)
        y1 = max(w[2] + w[4] for w in words)
        text = " ".join(w[0] for w in words)
        confidence = sum(w[5] for w in words) / len(words) / 100
        box = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        lines.append(OcrLine(text=text, box=box, confidence=round(confidence, 4), raw_text=text))
    return lines


def _languages(binary: str) -> str:
    try:
        listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "eng"
    available = set(listed.split())
    return "+".join(lang for lang in ("eng", "chi_sim") if lang in available) or "eng"
