"""The fidelity lab: a procedural character world with known attributes, a model-free reader, a
small SD-architecture model pretrained on the world (shipped weights) and the fidelity benchmark.

Light on purpose (pillow/numpy only at import): `python -m lorastrap.lab.pretrain` runs on bare
GPU machines, and the demo imports these helpers cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image

from lorastrap.lab.world import HELD_OUT, SIZE, STYLES, TRAIN_STYLES, VIEWS, Character, caption, draw

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def lab_model_dir() -> Path:
    """The shipped lab model (a diffusers folder: loads with from_pretrained, offline)."""
    if not (WEIGHTS_DIR / "model_index.json").is_file():
        from lorastrap.kernel.errors import PreconditionFailed

        raise PreconditionFailed(f"the lab model is missing from {WEIGHTS_DIR}; reinstall lorastrap "
                                 "or build it with `lorastrap lab pretrain --out DIR`")
    return WEIGHTS_DIR


def lab_model_record() -> dict:
    """How the shipped model was trained (command, steps, machine, measured accuracy)."""
    from lorastrap.lab.model_config import MARKER

    return json.loads((lab_model_dir() / MARKER).read_text())


def held_out_characters() -> list[Character]:
    """The lab's "new characters": attribute combinations never seen in pretraining."""
    return list(HELD_OUT)


def seed_images(character: Character, n: int = 4, style: str = "flat color",
                seed: int = 0) -> list[Image.Image]:
    """`n` front-view drawings of `character` (jitter differs per image): a bootstrap seed set."""
    return [draw(character, "from front", style, seed * 1000 + i) for i in range(n)]


def identity_tags(character: Character) -> list[str]:
    """The character's identity tags (Danbooru form), e.g. ['blonde hair', 'fox ears', ...]."""
    return character.tags()


def reader_identity_score(image: Image.Image,
                          expected_attrs: Character | Mapping[str, str] | Sequence[str] | str) -> float:
    """Fraction of the expected identity attributes (hair, ears, tail, dress) the reader finds."""
    from lorastrap.lab.reader import reader_identity_score as score

    return score(image, expected_attrs)


def is_lab_model(path: Path | str) -> bool:
    """True when `path` is a lab model folder (the clash report then scores identity by reader)."""
    from lorastrap.lab.model_config import MARKER

    return (Path(path) / MARKER).is_file()


__all__ = ["HELD_OUT", "SIZE", "STYLES", "TRAIN_STYLES", "VIEWS", "Character", "caption", "draw",
           "held_out_characters", "identity_tags", "is_lab_model", "lab_model_dir",
           "lab_model_record", "reader_identity_score", "seed_images"]
