"""Registry-aware training and generation: LoRA rows with lineage, generated images with
provenance, and the thin CLI commands (train, generate, model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from lorastrap.characters import add_character
from lorastrap.cli.common import AppContext
from lorastrap.kernel.pngmeta import parse_a1111_parameters, read_png_text, read_provenance
from lorastrap.method.generate import generate_candidates
from lorastrap.method.train import train_character_lora
from lorastrap.models.safetensors_io import safetensors_metadata
from registry.models import Image, Lora

FAST = {"max_train_steps": 2, "rank": 4, "alpha": 2.0, "sample_steps": 2, "batch_size": 2,
        "learning_rate": 5e-3}


@pytest.fixture
def character(workspace, tiny_model_dir: Path, seed_image: Path):  # type: ignore[no-untyped-def]
    workspace.config.workspace.base_model = str(tiny_model_dir)
    return add_character(workspace, "Tiny Girl", [seed_image], "1girl, solo, fox ears")


def test_train_registers_lineage_and_generate_registers_images(workspace, character) -> None:  # type: ignore[no-untyped-def]
    ws, slug = workspace, character.slug
    first = train_character_lora(ws, slug, "style", overrides=FAST, round_no=1, progress=False)
    assert first.path.is_file() and first.path.name == f"{slug}-style-r1.safetensors"
    meta = safetensors_metadata(first.path)
    assert meta["lorastrap.character"] == slug and meta["lorastrap.dataset_version"] == "1"
    assert meta["modelspec.trigger_phrase"] == character.trigger
    assert json.loads(meta["ss_tag_frequency"])  # keyed by the kohya folder name
    assert list(json.loads(meta["ss_dataset_dirs"]))[0].startswith(f"2_{character.trigger} 1girl")

    second = train_character_lora(ws, slug, "style", overrides=FAST, round_no=1, progress=False,
                                  init_from=first.path, parent_lora_id=first.id)
    assert second.path != first.path and second.path.is_file()  # never overwrites a registered file
    with ws.open_registry() as reg, reg.session() as s:
        rows = {r.id: r for r in s.scalars(select(Lora))}
        assert rows[second.id].parent_lora_id == first.id and rows[first.id].parent_lora_id is None
        assert rows[first.id].sha256 == first.sha256 and rows[first.id].dataset_version_id is not None
        assert rows[first.id].hyperparams["rank"] == 4 and rows[first.id].arch == "sd15"
    assert safetensors_metadata(second.path)["lorastrap.parent_lora_sha256"] == first.sha256

    paths = generate_candidates(ws, slug, ["from side", "from behind"], per_view=2, seed=5, steps=2,
                                lora_id=first.id)
    assert len(paths) == 4 and all(p.parent == ws.candidates_dir(slug, 0) for p in paths)
    params = parse_a1111_parameters(read_png_text(paths[0])["parameters"])
    assert params.prompt.startswith(f"{character.trigger}, 1girl, solo, fox ears, from side")
    assert params.seed == 5 and list(params.lora_hashes) == [first.name]
    with ws.open_registry() as reg, reg.session() as s:
        generated = list(s.scalars(select(Image).where(Image.origin == "generated")))
    assert len(generated) == 4
    assert {g.provenance["view"] for g in generated} == {"from side", "from behind"}
    assert all(g.provenance["lora_id"] == first.id and g.provenance["lora"][0]["sha256"] == first.sha256
               for g in generated)


def test_cli_train_generate_and_model(workspace, character, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.cli.generate import generate_cmd
    from lorastrap.cli.model import model
    from lorastrap.cli.train import train_cmd

    runner = CliRunner()
    obj = AppContext(workspace_path=str(workspace.root))
    result = runner.invoke(train_cmd, [character.slug, "--kind", "style", "--steps", "1", "--rank", "4",
                                       "--set", "sample_steps=2", "--set", "batch_size=2", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert Path(trained["path"]).is_file() and trained["steps"] == 1
    result = runner.invoke(generate_cmd, [character.slug, "--views", "from above", "--per-view", "1",
                                          "--steps", "2", "--out", str(tmp_path / "g"), "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    assert [Path(p).parent for p in json.loads(result.output)] == [tmp_path / "g"]
    result = runner.invoke(generate_cmd, [character.slug, "--views", "from above", "--per-view", "1", "--steps", "2",
                                          "--out", str(tmp_path / "s"), "--start-strength", "0.8", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    started = read_provenance(Path(json.loads(result.output)[0]))["start"]
    assert started["strength"] == 0.8 and len(started["source_sha256"]) == 64  # one of the seed crops
    result = runner.invoke(generate_cmd, [character.slug, "--start-strength", "1"], obj=obj)
    assert result.exit_code == 2 and "0<x<1" in result.output
    result = runner.invoke(model, ["tiny", "--out", str(tmp_path / "m"), "--arch", "sdxl"])
    assert result.exit_code == 0 and (tmp_path / "m" / "text_encoder_2").is_dir()
    result = runner.invoke(model, ["info", str(tmp_path / "m"), "--json"])
    assert json.loads(result.output)["arch"] == "sdxl"
