"""Put word spaces back into an OCR line from its pixels.

PP-OCRv4's recogniser often reads "FRESH BREWS, EVERY MORNING" as "FRESHBREWS,EVERYMORNING". The pixels still
show the words: between words the column profile of a horizontal line has white runs of about a third of the ink
height or more; between letters of a word, much less. We binarise the line's crop (Otsu), measure those runs,
pick a per-line threshold between the two populations (clamped to a safe band; italics are sheared upright
first), and insert a space between the
two recognised characters whose centres straddle each wide run.
"""

from __future__ import annotations

import numpy as np

MIN_GAP = 0.26  # word gap threshold bounds, as a fraction of the line's ink height
MAX_GAP = 0.45
SLANTS = (0.0, 0.1, 0.2, 0.3)  # italic shears tried (run per rise)
MEDIAN_RATIO = 1.6  # a word gap is also this much wider than the line's median gap (most are letter gaps)
MAX_SKEW = 0.07  # rise over run of the top edge: beyond this the line is not treated as horizontal


def recover_spaces(gray: np.ndarray, quad: list[list[float]], text: str, centers: list[float]) -> str:
    """`text` with spaces added where the line's image has word-sized gaps.

    `gray` is the whole image (uint8, H x W); `quad` the line's four corners; `centers` the x centre of each
    character of `text` in image coordinates (same length as `text`). Returns `text` unchanged when the line is
    not horizontal or the geometry does not fit.
    """
    if len(centers) != len(text) or len(text) < 2 or not _horizontal(quad):
        return text
    crop, x0 = _crop(gray, quad)
    if crop is None:
        return text
    gaps = word_gaps(crop)
    if not gaps:
        return text
    cuts = [x0 + (start + end) / 2 for start, end in gaps]
    out: list[str] = [text[0]]
    for i in range(1, len(text)):
        left, right = centers[i - 1], centers[i]
        wide = any(left < cut < right for cut in cuts)
        if wide and text[i] != " " and out[-1] != " ":
            out.append(" ")
        out.append(text[i])
    return "".join(out)


def word_gaps(crop: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) columns of the white runs in a line crop that are wide enough to be word spaces."""
    ink = _ink(crop)
    if ink is None:
        return []
    rows = np.flatnonzero(ink.sum(axis=1) >= max(1, int(0.005 * ink.shape[1])))
    if rows.size < 3:
        return []
    height = rows[-1] - rows[0] + 1
    columns = _upright_columns(ink[rows[0] : rows[-1] + 1])
    runs = _white_runs(columns)
    if len(runs) < 1:
        return []
    widths = np.array([end - start for start, end in runs], dtype=float) / height
    threshold = min(max(_otsu_1d(widths), MIN_GAP), MAX_GAP)
    threshold = max(threshold, MEDIAN_RATIO * float(np.median(widths)))
    return [run for run, width in zip(runs, widths, strict=True) if width >= threshold]


def _upright_columns(band: np.ndarray) -> np.ndarray:
    """Inked columns of a text band, undoing an italic slant: the shear that leaves the most empty columns."""
    best: np.ndarray | None = None
    middle = (band.shape[0] - 1) / 2
    for slant in SLANTS:
        if slant == 0:
            columns = band.any(axis=0)
        else:
            columns = np.zeros(band.shape[1], dtype=bool)
            for row, mask in enumerate(band):
                shift = int(round(slant * (row - middle)))
                columns |= _shifted(mask, shift)
        if best is None or columns.sum() < best.sum():
            best = columns
    return best if best is not None else band.any(axis=0)


def _shifted(mask: np.ndarray, shift: int) -> np.ndarray:
    """`mask` moved right by `shift` columns (left when negative), zero-filled (no wrap-around)."""
    if shift == 0:
        return mask
    out = np.zeros_like(mask)
    if shift > 0:
        out[shift:] = mask[:-shift]
    else:
        out[:shift] = mask[-shift:]
    return out


def _horizontal(quad: list[list[float]]) -> bool:
    (x0, y0), (x1, y1) = quad[0], quad[1]
    width = x1 - x0
    height = abs(quad[3][1] - quad[0][1])
    return width > 0 and abs(y1 - y0) <= MAX_SKEW * width and height < width


def _crop(gray: np.ndarray, quad: list[list[float]]) -> tuple[np.ndarray | None, int]:
    points = np.asarray(quad, dtype=float)
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, gray.shape[1]), min(y1, gray.shape[0])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None, x0
    return gray[y0:y1, x0:x1], x0


def _ink(crop: np.ndarray) -> np.ndarray | None:
    """Boolean ink mask: Otsu threshold, ink being the minority class (dark on light or light on dark)."""
    values = crop.astype(np.uint8)
    if int(values.max()) - int(values.min()) < 24:
        return None
    histogram = np.bincount(values.ravel(), minlength=256).astype(float)
    threshold = _otsu_threshold(histogram)
    dark = values <= threshold
    return dark if dark.mean() <= 0.5 else ~dark


def _otsu_threshold(histogram: np.ndarray) -> int:
    total = histogram.sum()
    levels = np.arange(histogram.size, dtype=float)
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * levels)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return int(np.argmax(between[:-1]))


def _otsu_1d(values: np.ndarray) -> float:
    """The cut that best separates `values` into two groups (largest between-class variance)."""
    ordered = np.sort(values)
    if ordered.size < 2 or ordered[0] == ordered[-1]:
        return (MIN_GAP + MAX_GAP) / 2
    best, cut = -1.0, float(ordered[-1])
    for i in range(1, ordered.size):
        low, high = ordered[:i], ordered[i:]
        score = low.size * high.size * (high.mean() - low.mean()) ** 2
        if score > best:
            best, cut = score, float((ordered[i - 1] + ordered[i]) / 2)
    return cut


def _white_runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """Runs of columns without ink that lie between inked columns: [(start, end_exclusive)]."""
    inked = np.flatnonzero(columns)
    if inked.size < 2:
        return []
    runs = []
    for left, right in zip(inked[:-1], inked[1:], strict=True):
        if right - left > 1:
            runs.append((int(left) + 1, int(right)))
    return runs
