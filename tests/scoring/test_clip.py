"""CLIP score: a tiny random open_clip model from a local folder; missing weights are reported, not fatal."""

from __future__ import annotations

import pytest
from PIL import Image

from coco_agent.scoring.clip_score import ClipUnavailable, clip_score, load_clip, resolve_clip
from coco_agent.scoring.score import score_image


def test_local_folder_scores_and_loads_once(tiny_clip_dir) -> None:
    image = Image.new("RGB", (120, 80), "red")
    result = clip_score(image, "a red rectangle", str(tiny_clip_dir))
    assert -1.0 <= result["score"] <= 1.0 and result["model"] == str(tiny_clip_dir)
    assert clip_score(image, "a red rectangle", str(tiny_clip_dir))["score"] == result["score"]
    assert load_clip(str(tiny_clip_dir)) is load_clip(str(tiny_clip_dir))


def test_missing_weights_are_unavailable_with_a_reason(tmp_path) -> None:
    image = Image.new("RGB", (32, 32))
    assert clip_score(image, "x", "none") == {"available": False, "reason": "CLIP is turned off (none)"}
    missing = clip_score(image, "x", "someone/not-cached-clip")
    assert missing["available"] is False and "hf download someone/not-cached-clip" in missing["reason"]
    (tmp_path / "config-only").mkdir()
    (tmp_path / "config-only" / "open_clip_config.json").write_text("{}")
    with pytest.raises(ClipUnavailable, match="no weights"):
        resolve_clip(str(tmp_path / "config-only"))
    with pytest.raises(ClipUnavailable, match="unknown CLIP model"):
        resolve_clip("NoSuchArch:tag")
    with pytest.raises(ClipUnavailable, match="no pretrained tag"):
        resolve_clip("ViT-B-32")


def test_score_image_with_clip_and_no_expected_text(tiny_clip_dir) -> None:
    scores = score_image(Image.new("RGB", (64, 64), "blue"), "a blue square", clip_model=str(tiny_clip_dir))
    assert scores["expected_source"] == "none" and scores["text"]["available"] is False
    assert isinstance(scores["clip"]["score"], float)
