"""Scoring fixtures: a tiny random open_clip model saved to a temp dir (config + weights), no download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
}


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random open_clip model (ViT 32 px, 1 layer) built from a local config with pretrained=None."""
    import open_clip
    import torch

    path = tmp_path_factory.mktemp("tiny-clip")
    (path / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    torch.manual_seed(0)
    model = open_clip.create_model(f"local-dir:{path}", pretrained=None, load_weights=False)
    torch.save(model.state_dict(), path / "open_clip_pytorch_model.bin")
    return path
