"""The shipped lab model: loads offline with diffusers, fits the size budget, and draws the world
well enough that the reader recognises every attribute above chance."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from lorastrap.lab import lab_model_dir, lab_model_record
from lorastrap.lab.model_config import LAB_WORDS, MARKER
from lorastrap.lab.scoring import CHANCE, score
from lorastrap.lab.world import VIEWS, caption, training_characters


@pytest.fixture(scope="module")
def lab_pipe():
    import warnings

    import torch
    from diffusers import StableDiffusionPipeline

    # float32 throughout, as lorastrap loads it (transformers keeps the text encoder's saved fp16);
    # `torch_dtype` works on every supported diffusers (newer ones call it `dtype` and warn)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        pipe = StableDiffusionPipeline.from_pretrained(str(lab_model_dir()), local_files_only=True,
                                                       use_safetensors=True, safety_checker=None,
                                                       requires_safety_checker=False, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_shipped_weights_are_small_fp16_safetensors():
    root = lab_model_dir()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 20 * 1024 * 1024
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert {p.parent.name for p in weights} == {"unet", "vae", "text_encoder"}
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".ckpt", ".pkl")]
    for path in weights:
        with safe_open(str(path), "pt") as fh:
            assert {str(fh.get_slice(k).get_dtype()) for k in fh.keys()} == {"F16"}
    record = json.loads((root / MARKER).read_text())
    assert record == lab_model_record()
    assert record["steps"]["unet"] > 0 and record["machine"]


def test_loads_offline_with_the_standard_classes(lab_pipe):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    assert isinstance(lab_pipe.unet, UNet2DConditionModel)
    assert isinstance(lab_pipe.vae, AutoencoderKL)
    assert isinstance(lab_pipe.text_encoder, CLIPTextModel)
    assert isinstance(lab_pipe.tokenizer, CLIPTokenizer)
    for word in LAB_WORDS:  # the vocabulary covers the world's tags
        ids = lab_pipe.tokenizer(word, add_special_tokens=False).input_ids
        assert len(ids) == (2 if word == "1girl" else 1), word
    assert lab_pipe.unet.config.sample_size * 4 == 64


def test_generations_are_read_above_chance_for_every_attribute(lab_pipe):
    from lorastrap.models.generation import generate_images

    chars = training_characters()
    prompts, truths = [], []
    for i in range(15):
        c, view = chars[(i * 37) % len(chars)], VIEWS[i % len(VIEWS)]
        prompts.append(caption(c, view, "flat color"))
        truths.append({**c.attrs(), "view": view})
    images = generate_images(lab_pipe, prompts, list(range(15)), steps=10, cfg=4.0, max_batch=15)
    result = score(images, truths)
    for attr, acc in result["per_attr"].items():
        assert acc > CHANCE[attr] + 0.15, (attr, result)
    assert result["all"] > 0.2, result
