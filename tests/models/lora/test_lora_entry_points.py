"""Every door a LoRA file comes in by — `style add`, `clash`, `clash --weights-only`, `clash fix`,
`train --init-from`, `generate --lora` — accepts a community-shaped LoRA (kohya names, text-encoder
keys, sd-scripts metadata, not made by lorastrap) and refuses a bad one with one line, leaving the
workspace byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import community_lora
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from lorastrap.models.lora import read_lora

SMALL_CLASH = dict(weights=(1.0,), seeds=1, views=["front"], steps=2, verify_seeds=0, presets=False,
                   show_progress=False)
FAST = {"max_train_steps": 3, "batch_size": 2, "rank": 4, "alpha": 4.0, "learning_rate": 5e-3,
        "lr_warmup_steps": 0, "sample_steps": 2, "caption_variants": 2}


@pytest.fixture(scope="module")
def template(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workspace on the session's tiny SD1.5 model with a character whose LoRA was trained for
    real (named through a --config TOML's `output_name`), plus a community style LoRA."""
    from lorastrap.characters import add_character
    from lorastrap.method.train import train_character_lora
    from lorastrap.workspace import init_workspace

    base = tmp_path_factory.mktemp("entry")
    ws, _ = init_workspace(base / "ws", base_model=str(tiny_model_dir))
    seed = base / "kitsune.png"
    image = Image.new("RGB", (96, 128), (245, 240, 230))
    ImageDraw.Draw(image).ellipse((20, 10, 76, 70), fill=(230, 150, 40))
    image.save(seed)
    add_character(ws, "kitsune", [seed], "1girl, solo, fox ears", trigger="kitsune")
    config = base / "run.toml"
    config.write_text('output_name = "kitsune-handnamed"\n')
    trained = train_character_lora(ws, "kitsune", "character", overrides=FAST, config_file=config, progress=False)
    community = community_lora(base / "downloads" / "pixelart.safetensors", tiny_model_dir)
    return {"root": ws.root, "lora": trained, "community": community, "downloads": base / "downloads"}


@pytest.fixture
def ws(template: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from lorastrap.workspace import load_workspace

    root = tmp_path / "ws"
    shutil.copytree(template["root"], root)
    monkeypatch.chdir(root)
    return load_workspace(root)


def test_output_name_from_a_config_file_names_the_file(template: dict) -> None:
    trained = template["lora"]
    assert trained.path.name == "kitsune-handnamed.safetensors"
    assert read_lora(trained.path).metadata["ss_output_name"] == "kitsune-handnamed"


def test_community_lora_goes_through_every_command(ws, template: dict, cli_run) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.clash.compat import fix_style
    from lorastrap.clash.options import ClashOptions
    from lorastrap.clash.run import analyse_weights, run_clash
    from lorastrap.method.train import train_character_lora

    community = template["community"]
    added = cli_run("-w", str(ws.root), "style", "add", str(community), "--name", "pixel")
    assert added.code == 0, added.err
    assert "trigger: 'pixel art', proposed from the file's training captions ('pixel art' in 12 of 12" in added.out
    assert "blue hair" not in added.out.split("trigger:")[1].split("(")[0]  # in half the captions only

    analysis = analyse_weights(ws, "kitsune", ["pixel"])
    assert analysis["styles"]["pixel"]["shared_modules"] == 56  # every UNet attention projection

    outcome = run_clash(ws, "kitsune", ClashOptions(styles=["pixel"], out=ws.root / "report", **SMALL_CLASH))
    report = json.loads(outcome.json.read_text())
    assert report["styles"][0]["trigger"] == "pixel art" and outcome.html.is_file()

    fixed = fix_style(ws, "kitsune", "pixel", ws.root / "pixel-compat.safetensors", grid=False)
    keys = set(load_file(str(fixed.path)))
    assert "lora_te_text_model_encoder_layers_1_mlp_fc2.lora_down.weight" in keys  # text encoder kept, standard name
    assert all(k.startswith(("lora_unet_down_blocks", "lora_unet_mid_block", "lora_unet_up_blocks", "lora_te_text_model"))
               for k in keys)

    follow = train_character_lora(ws, "kitsune", "character", overrides={**FAST, "max_train_steps": 1},
                                  init_from=community, progress=False)
    again = read_lora(follow.path)
    assert set(again.modules) == set(read_lora(community).modules)  # the file's layout, text encoder included
    assert {m.alpha for m in again.modules.values()} == {2.0} and {m.rank for m in again.modules.values()} == {4}


def _bad(kind: str, community: Path, out: Path, sdxl_dir: Path) -> Path:
    tensors = load_file(str(community))
    meta = read_lora(community).metadata
    key = next(k for k in sorted(tensors) if k.endswith("lora_up.weight"))
    if kind == "nan":
        tensors[key][0, 0] = float("nan")
    elif kind == "inf":
        tensors[key][-1, -1] = float("inf")
    elif kind == "int":
        tensors[key] = tensors[key].to(torch.int16)
    elif kind == "misfit":  # one module's input width is not the model's
        down = key.replace("lora_up", "lora_down")
        tensors[down] = torch.zeros(tensors[down].shape[0], tensors[down].shape[1] + 8, dtype=torch.float16)
    elif kind == "unknown-name":
        tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn9_to_q.lora_down.weight"] = tensors[key][:4].T.contiguous()
        tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn9_to_q.lora_up.weight"] = tensors[key].clone()
    elif kind == "wrong-arch":
        return community_lora(out, sdxl_dir, "sdxl")
    save_file(tensors, str(out), metadata=meta)
    return out


BAD = [("nan", "holds NaN or infinite values"), ("inf", "holds NaN or infinite values"),
       ("int", "is int16, not a float type"), ("misfit", "does not fit the base model"),
       ("unknown-name", "names no UNet or text-encoder module"), ("wrong-arch", "is an SDXL LoRA but the base model")]


@pytest.mark.parametrize(("kind", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_lora_is_refused_at_style_add_and_init_from(ws, template, tiny_sdxl_dir, cli_run, snapshot,  # type: ignore[no-untyped-def]
                                                         kind: str, message: str) -> None:
    bad = _bad(kind, template["community"], template["downloads"] / f"{kind}.safetensors", tiny_sdxl_dir)
    before = snapshot(ws.root)
    for argv in (["style", "add", str(bad), "--name", "bad"],
                 ["train", "kitsune", "--kind", "character", "--init-from", str(bad), "--steps", "1"]):
        r = cli_run("-w", str(ws.root), *argv)
        assert r.code == 2 and r.out == "", (argv, r.out, r.err)
        assert r.err.startswith("error: ") and r.err.count("\n") == 1 and message in r.err, (argv, r.err)
        assert snapshot(ws.root) == before, argv


def test_bad_registered_lora_is_refused_by_generate_clash_and_fix(ws, template, cli_run, snapshot) -> None:  # type: ignore[no-untyped-def]
    """A registered LoRA whose file went bad after registration (here: NaN in the character's file)."""
    r = cli_run("-w", str(ws.root), "style", "add", str(template["community"]), "--name", "pixel")
    assert r.code == 0, r.err
    char_file = template["lora"].path.relative_to(template["root"])
    _bad("nan", ws.root / char_file, ws.root / char_file, Path())
    before = snapshot(ws.root)
    for argv in (["generate", "kitsune", "--lora", str(template["lora"].id), "--views", "front", "--per-view", "1"],
                 ["clash", "kitsune", "--styles", "pixel", "--weights-only"],
                 ["clash", "kitsune", "--styles", "pixel", "--seeds", "1", "--steps", "2"],
                 ["clash", "fix", "kitsune", "--style", "pixel", "--no-grid"]):
        r = cli_run("-w", str(ws.root), *argv)
        assert r.code == 2 and r.err.count("\n") == 1 and "holds NaN or infinite values" in r.err, (argv, r.err)
        assert snapshot(ws.root) == before, argv


def test_style_trained_on_pixel_art_captions(ws, tiny_model_dir: Path, tmp_path: Path, cli_run) -> None:  # type: ignore[no-untyped-def]
    """A style LoRA trained (for real, sd-scripts metadata) on the lab world's "pixel art" captions:
    without --trigger, `style add` proposes "pixel art"; registered without it, `clash` says the
    style does not show and names the words instead of advising. (The tiny random model learns no
    visible style in a few steps — like a trigger-bound style prompted without its words.)"""
    from lorastrap.clash.options import ClashOptions
    from lorastrap.clash.run import run_clash
    from lorastrap.lab.world import VIEWS, all_characters, caption, draw
    from lorastrap.training.config import TrainConfig
    from lorastrap.training.loop import TrainItem, train_lora

    folder = tmp_path / "10_pixel"
    folder.mkdir()
    items = []
    for i, (character, view) in enumerate(zip(all_characters()[::13][:6], VIEWS * 2)):
        draw(character, view, "pixel art", seed=i).resize((64, 64)).save(folder / f"{i}.png")
        items.append(TrainItem(folder / f"{i}.png", caption(character, view, "pixel art"), 10, subset="10_pixel"))
    cfg = TrainConfig.from_preset("style", **{**FAST, "learning_rate": 1e-6, "max_train_steps": 2})
    style = train_lora(tiny_model_dir, items, cfg, tmp_path / "pixel.safetensors", work_dir=tmp_path / "w",
                       cache_dir=tmp_path / "c", progress=False).path
    assert "modelspec.trigger_phrase" not in read_lora(style).metadata

    proposed = cli_run("-w", str(ws.root), "style", "add", str(style), "--name", "pixel")
    assert proposed.code == 0 and "trigger: 'pixel art', proposed" in proposed.out, proposed.err
    bare = cli_run("-w", str(ws.root), "style", "add", str(style), "--name", "pixel", "--trigger", "", "--replace")
    assert bare.code == 0 and "trigger: none" in bare.out, bare.out
    outcome = run_clash(ws, "kitsune", ClashOptions(styles=["pixel"], out=tmp_path / "report",
                                                    **{**SMALL_CLASH, "weights": (0.5, 1.0)}))
    note = outcome.notes["pixel"]
    assert "does not show" in note and "'pixel art'" in note and "--trigger 'pixel art'" in note
    assert outcome.advice == []  # no advice drawn from noise
    report = json.loads(outcome.json.read_text())
    assert report["styles"][0]["style_shows"] is False and report["ranking"][0]["advice"] is None
