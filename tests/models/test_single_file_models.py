"""Single-file checkpoints in the original (ldm/sgm) layout — the kind people download — as base
models: read offline by diffusers' single-file loader with the local config folder, then train,
generate and a clash grid, for SD1.5 and SDXL side by side in one workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import community_lora
from PIL import Image

from lorastrap.models.base import load_pipeline, resolve_base_model
from lorastrap.models.tiny import build_pipeline

STEPS = ["--steps", "2", "--rank", "4", "--batch-size", "2", "--lr", "0.005", "--set", "lr_warmup_steps=0",
         "--set", "sample_steps=2", "--quiet"]


def test_checkpoints_load_with_the_tiny_models_weights(tiny_single_files: dict[str, Path]) -> None:
    for arch, path in tiny_single_files.items():
        ref = resolve_base_model(path)
        assert (ref.kind, ref.arch, ref.config_dir) == ("single_file", arch, path.with_suffix(""))
        keys = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")])
        assert any(k.startswith("model.diffusion_model.input_blocks.1.1.") for k in keys)  # original names
        assert not list(path.with_suffix("").rglob("*.safetensors"))  # the folder holds configs only
        loaded, built = load_pipeline(ref), build_pipeline(arch, 0)
        parts = ["unet", "vae", "text_encoder"] + (["text_encoder_2"] if arch == "sdxl" else [])
        for part in parts:
            mine, theirs = getattr(loaded, part).state_dict(), getattr(built, part).state_dict()
            assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), (arch, part)


@pytest.fixture(scope="module")
def seed_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed.png"
    Image.new("RGB", (96, 128), (230, 140, 60)).save(path)
    return path


def test_train_generate_and_clash_on_single_files(tiny_single_files, tiny_model_dir, tiny_sdxl_dir, seed_png,
                                                  tmp_path, cli_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.workspace import init_workspace

    ws, _ = init_workspace(tmp_path / "ws", base_model=str(tiny_model_dir))
    monkeypatch.chdir(ws.root)
    w = ["-w", str(ws.root)]
    sd15, sdxl = tiny_single_files["sd15"], tiny_single_files["sdxl"]
    # one character on the SD1.5 checkpoint from the start, one moved to SDXL by `train --base-model`
    assert cli_run(*w, "character", "add", "Fox", "--image", str(seed_png), "--tags", "1girl, fox ears",
                   "--base-model", str(sd15)).code == 0
    assert cli_run(*w, "character", "add", "Cat", "--image", str(seed_png), "--tags", "1girl, cat ears").code == 0
    fox = cli_run(*w, "train", "fox", "--kind", "character", *STEPS, "--json")
    cat = cli_run(*w, "train", "cat", "--kind", "character", "--base-model", str(sdxl), *STEPS, "--json")
    assert fox.code == 0 and cat.code == 0, (fox.err, cat.err)
    shown = json.loads(cli_run(*w, "character", "show", "cat", "--json").out)
    assert shown["base_model"] == str(sdxl)
    status = cli_run(*w, "status").out
    assert f"base model {sd15}" in status and f"base model {sdxl}" in status
    for slug, arch, model, path in (("fox", "sd15", tiny_model_dir, sd15), ("cat", "sdxl", tiny_sdxl_dir, sdxl)):
        lora = Path(json.loads((fox if slug == "fox" else cat).out)["path"])
        meta = json.loads(lora.read_bytes()[8:8 + int.from_bytes(lora.read_bytes()[:8], "little")])["__metadata__"]
        assert meta["ss_base_model_version"] == ("sdxl_base_v1-0" if arch == "sdxl" else "sd_v1")
        assert len(meta["ss_sd_model_hash"]) == 8  # A1111's legacy hash of the checkpoint file
        gen = cli_run(*w, "generate", slug, "--views", "front", "--per-view", "1", "--steps", "2")
        assert gen.code == 0, gen.err
        assert Image.open(next((ws.root / "characters" / slug / "candidates").rglob("*.png"))).size == (64, 64)
        style = community_lora(tmp_path / f"{slug}-style.safetensors", model, arch)
        added = cli_run(*w, "style", "add", str(style), "--name", f"{slug}-pixel", "--character", slug)
        assert added.code == 0 and f"({ 'SDXL' if arch == 'sdxl' else 'SD1.5'})" in added.out, added.err
        clash = cli_run(*w, "clash", slug, "--styles", f"{slug}-pixel", "--weights", "1.0", "--seeds", "1",
                        "--views", "front", "--steps", "2", "--verify-seeds", "0", "--no-presets", "--json")
        assert clash.code == 0, clash.err
        report = json.loads(Path(json.loads(clash.out)["json"]).read_text())
        assert report["arch"] == arch and report["base_model"] == str(path)
    # the SDXL style does not fit the SD1.5 character: refused, one line
    wrong = cli_run(*w, "clash", "fox", "--styles", "cat-pixel", "--weights-only")
    assert wrong.code == 2 and "is an SDXL LoRA but the base model" in wrong.err
