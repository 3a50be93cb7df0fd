"""Generation with named adapters, PNG `parameters`/`lorastrap` chunks, and the A1111 parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lorastrap.kernel.errors import UserError
from lorastrap.kernel.pngmeta import format_a1111_parameters, parse_a1111_parameters, read_png_text, read_provenance
from lorastrap.models.generation import Generator, GenRequest, save_generated

A1111_SAMPLE = """masterpiece, 1girl, fox ears,
blonde hair <lora:eiei:0.8>
Negative prompt: lowres, bad anatomy
Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3405691582, Size: 512x768, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "eiei: 0123456789ab, other: ba9876543210", \
Version: v1.10.1"""


def test_parse_a1111_parameters_like_a1111() -> None:
    p = parse_a1111_parameters(A1111_SAMPLE)
    assert p.prompt == "masterpiece, 1girl, fox ears,\nblonde hair <lora:eiei:0.8>"
    assert p.negative_prompt == "lowres, bad anatomy"
    assert (p.steps, p.seed, p.cfg_scale, p.size) == (28, 3405691582, 7.0, (512, 768))
    assert p.settings["Sampler"] == "DPM++ 2M" and p.settings["Model"] == "v1-5-pruned-emaonly"
    assert p.lora_hashes == {"eiei": "0123456789ab", "other": "ba9876543210"}
    bare = parse_a1111_parameters("just a prompt")
    assert bare.prompt == "just a prompt" and bare.settings == {}


def test_format_then_parse_round_trips_quoted_values() -> None:
    text = format_a1111_parameters("a, b", "", {"Steps": 2, "Seed": 5, "Size": "64x64",
                                                  "Model": 'odd: "name", here', "CFG scale": 6})
    assert "Negative prompt" not in text
    p = parse_a1111_parameters(text)
    assert p.prompt == "a, b" and p.negative_prompt == "" and p.settings["Model"] == 'odd: "name", here'


def random_lora(model_dir: Path, path: Path, seed: int, scale: float = 0.5) -> Path:
    """A kohya LoRA with random weights for every attention projection of the tiny UNet."""
    from lorastrap.clash.synthetic import lora_from_modules, unet_lora_shapes
    from lorastrap.models.base import load_pipeline, resolve_base_model
    from lorastrap.models.lora import save_lora

    pipe = load_pipeline(resolve_base_model(model_dir))
    gen = torch.Generator().manual_seed(seed)
    modules = {key: (torch.randn(2, shape[1], generator=gen) * scale, torch.randn(shape[0], 2, generator=gen) * scale, 1.0)
               for key, shape in unet_lora_shapes(pipe.unet).items() if key.endswith(("to_q", "to_k", "to_v", "to_out_0"))}
    meta = {"ss_base_model_version": "sd_v1", "ss_network_dim": "2"}
    save_lora(lora_from_modules(modules, meta), path, meta)
    return path


@pytest.fixture(scope="module")
def loras(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("loras")
    return random_lora(tiny_model_dir, root / "a.safetensors", 1), random_lora(tiny_model_dir, root / "b.safetensors", 2)


def _pixels(img) -> np.ndarray:
    return np.asarray(img.image).astype(int)


def test_batch_of_views_and_seeds_writes_parseable_pngs(tiny_model_dir: Path, loras, tmp_path: Path) -> None:
    views = ["from side", "from behind"]
    requests = [GenRequest(f"eiei, 1girl, {v}", "lowres", seed=s, steps=2, cfg=5.0, view=v,
                           extra={"character": "eiei"}) for v in views for s in (1, 2)]
    with Generator(tiny_model_dir) as gen:
        gen.add_lora(loras[0], "eiei")
        images = gen.generate(requests)
        alone = gen.generate(requests[3:])  # one pipeline call per batch; seeds are per image
    assert len(images) == 4 and np.abs(_pixels(images[3]) - _pixels(alone[0])).max() <= 1
    path = save_generated(images[3], tmp_path / "out" / "x.png")
    params = parse_a1111_parameters(read_png_text(path)["parameters"])
    assert params.prompt == "eiei, 1girl, from behind <lora:eiei:1>"
    assert params.negative_prompt == "lowres"
    assert (params.steps, params.seed, params.cfg_scale, params.size) == (2, 2, 5.0, (64, 64))
    assert params.settings["Sampler"] == "DDIM" and len(params.settings["Model hash"]) == 10
    assert list(params.lora_hashes) == ["eiei"] and len(params.lora_hashes["eiei"]) == 12
    prov = read_provenance(path)
    assert prov["view"] == "from behind" and prov["seed"] == 2 and prov["character"] == "eiei"
    assert prov["lora"][0]["name"] == "eiei" and prov["sampler"] == "DDIM" and prov["negative"] == "lowres"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_adapter_weights_switch_in_place(tiny_model_dir: Path, loras) -> None:
    request = [GenRequest("eiei, 1girl", seed=4, steps=2)]
    with Generator(tiny_model_dir) as gen:
        base = _pixels(gen.generate(request)[0])
        gen.add_lora(loras[0], "a")
        gen.add_lora(loras[1], "b")
        both = _pixels(gen.generate(request)[0])
        gen.set_weights({"a": 1.0})
        only_a = _pixels(gen.generate(request)[0])
        gen.set_weights({"a": 0.0})
        zero = _pixels(gen.generate(request)[0])
        gen.set_weights({"a": {"unet": {"down": 0.0, "mid": 0.0, "up": 1.0}}})
        up_only = _pixels(gen.generate(request)[0])
        gen.set_weights({})
        disabled = _pixels(gen.generate(request)[0])
        with pytest.raises(UserError, match="not loaded"):
            gen.set_weights({"c": 1.0})
    assert np.array_equal(disabled, base) and np.array_equal(zero, base)
    assert not np.array_equal(both, only_a) and not np.array_equal(only_a, base)
    assert not np.array_equal(up_only, only_a) and not np.array_equal(up_only, base)


def test_mismatched_or_broken_lora_is_a_user_error(tiny_model_dir: Path, tiny_sdxl_dir: Path, loras,
                                                    tmp_path: Path) -> None:
    with Generator(tiny_sdxl_dir) as gen:
        with pytest.raises(UserError, match="is an SD1.5 LoRA but the base model"):
            gen.add_lora(loras[0], "a")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(loras[0].read_bytes()[:-100])
    with Generator(tiny_model_dir) as gen:
        with pytest.raises(UserError, match="truncated"):
            gen.add_lora(cut, "cut")
        with pytest.raises(UserError, match="sampler"):
            Generator(tiny_model_dir, scheduler="nope")



def _starts(strength: float) -> list[GenRequest]:
    from PIL import Image as PILImage

    from lorastrap.models.start_image import StartImage

    red, blue = PILImage.new("RGB", (80, 80), (230, 20, 20)), PILImage.new("RGB", (80, 80), (20, 20, 230))
    return [GenRequest("1girl, solo, from front", seed=3, steps=8, start=StartImage(img, strength, name))
            for img, name in ((red, "r" * 64), (blue, "b" * 64), (red, "r" * 64))]


@pytest.mark.parametrize("model", ["tiny_model_dir", "tiny_sdxl_dir"])
def test_a_start_image_is_reproducible_and_recorded(model: str, request: pytest.FixtureRequest,
                                                    tmp_path: Path) -> None:
    """img2img (SD1.5 and SDXL): the same start and seed reproduce, another start changes the
    image, and the PNG says how it was made (A1111's `Denoising strength`, the start's source)."""
    with Generator(request.getfixturevalue(model)) as gen:
        made = gen.generate(_starts(0.5))
    r, b, again = (_pixels(m) for m in made)
    assert np.array_equal(r, again) and not np.array_equal(r, b)
    path = save_generated(made[0], tmp_path / "start.png")
    assert parse_a1111_parameters(read_png_text(path)["parameters"]).settings["Denoising strength"] == "0.5"
    assert read_provenance(path)["start"] == {"source_sha256": "r" * 64, "strength": 0.5, "blur": 0.0625}


def test_a_start_image_steers_the_colours_on_a_trained_model() -> None:
    """On the lab model (a trained VAE and UNet) a red start makes a redder image than a blue
    one, even at the method's strength 0.9: the colour layout shows through the noise."""
    from lorastrap.lab import lab_model_dir

    with Generator(lab_model_dir()) as gen:
        r, b, _ = (_pixels(m) for m in gen.generate(_starts(0.9)))
    assert r[..., 0].mean() - r[..., 2].mean() > b[..., 0].mean() - b[..., 2].mean() + 20
