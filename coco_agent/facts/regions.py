"""After refinement, region by region: each string the prompt states (its quotes, or the batch file's `texts`)
that the program drew is read again by OCR inside the box the renderer measured for it, in the draft and in the
refined image, so a word the refiner smudged is named with its place, not averaged into one global score.

A region is *worse* when the refined image reads fewer of its words (zh: characters) than the draft does there:
the draft is the baseline, so a string the local OCR cannot read in either is not blamed on the refiner. Strings
the program did not draw as one text, and boxes that fall outside the picture, are skipped and listed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from PIL import Image

from coco_agent.scoring.text_score import detect_mode, normalize, score_text

PAD = 4  # px around a measured box (anti-aliasing, descenders the measurement left out)
MAX_REGIONS = 12  # stated strings checked per image at most (each is two OCR reads of the whole canvas)


def locate(texts: list[dict[str, Any]], expected: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """For each stated string, the tightest drawn text that contains it: [{text, box, drawn}], and the strings
    skipped (not drawn as one text)."""
    found, skipped = [], []
    for want in expected[:MAX_REGIONS]:
        mode = detect_mode([want])
        key = normalize(want, mode)
        holders = [t for t in texts if key and key in normalize(t.get("text", ""), mode)]
        if not holders:
            skipped.append(want)
            continue
        tight = min(holders, key=lambda t: (t["box"][2] - t["box"][0]) * (t["box"][3] - t["box"][1]))
        found.append({"text": want, "box": list(tight["box"]), "drawn": tight["text"]})
    skipped += expected[MAX_REGIONS:]
    return found, skipped


def isolate(image: Image.Image, box: list[int]) -> Image.Image | None:
    """The picture with only the padded box left, everything else filled with the box's own edge colour (the
    OCR reads a lone label on a canvas of normal size far better than a tight crop); None when the box lies
    outside the picture."""
    left, top = max(0, box[0] - PAD), max(0, box[1] - PAD)
    right, bottom = min(image.width, box[2] + PAD), min(image.height, box[3] + PAD)
    if right - left < 2 or bottom - top < 2:
        return None
    part = image.crop((left, top, right, bottom))
    edge = [part.getpixel((x, y)) for x in range(part.width) for y in (0, part.height - 1)]
    edge += [part.getpixel((x, y)) for y in range(part.height) for x in (0, part.width - 1)]
    canvas = Image.new("RGB", image.size, Counter(edge).most_common(1)[0][0])
    canvas.paste(part, (left, top))
    return canvas


def check_regions(
    draft: Image.Image,
    refined: Image.Image,
    texts: list[dict[str, Any]],
    expected: list[str],
    engine: str = "auto",
) -> dict[str, Any]:
    """Each located string read in the draft and in the refined image: the regions, which got worse, what was
    skipped. Raises OcrUnavailable when no OCR engine runs here."""
    from coco_agent.models.content import flatten_rgb
    from coco_agent.scoring.ocr import load_ocr

    reader = load_ocr(engine)
    found, skipped = locate(texts, expected)
    regions = []
    for region in found:
        parts = [isolate(flatten_rgb(image), region["box"]) for image in (draft, refined)]
        if parts[0] is None or parts[1] is None or draft.size != refined.size:
            skipped.append(region["text"])
            continue
        reads = [reader.read(part) for part in parts]
        scores = [score_text([line.text for line in r.lines], [region["text"]]) for r in reads]
        regions.append(
            {
                **region,
                "draft_read": reads[0].text[:200],
                "refined_read": reads[1].text[:200],
                "draft": scores[0].score,
                "refined": scores[1].score,
                "worse": scores[1].matched < scores[0].matched,
            }
        )
    worse = [r for r in regions if r["worse"]]
    return {
        "engine": getattr(reader, "label", reader.name),
        "checked": len(regions),
        "worse": [r["text"] for r in worse],
        "problems": [problem(r) for r in worse],
        "regions": regions,
        "skipped": skipped,
    }


def problem(region: dict[str, Any]) -> str:
    """One smudged region, as a person reads it."""
    box = region["box"]
    read = region["refined_read"].replace("\n", " ").strip()
    return (
        f"{region['text']!r} at ({box[0]}, {box[1]})-({box[2]}, {box[3]}) reads {repr(read) if read else 'nothing'}"
        " after refinement "
        f"({region['draft']:.2f} -> {region['refined']:.2f} of its words)"
    )
