"""The method end to end on the tiny model with small thresholds (4 → 6 → 8)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import small_method
from PIL import Image
from sqlalchemy import select

from lorastrap.characters import add_character
from lorastrap.dataset.kohya import export_dataset
from lorastrap.dataset.versions import diff_datasets
from lorastrap.kernel.errors import PreconditionFailed
from lorastrap.method.curation import curate, preview_captions
from lorastrap.method.lineage import lineage_tree, render_lineage
from lorastrap.method.step import bootstrap_step, character_status
from lorastrap.workspace import load_workspace
from registry.models import DatasetVersion, Lora
from registry.models import Image as ImageRow

IDENTITY = ["1girl", "solo", "fox ears", "fox tail", "blonde hair"]


def _configure(ws, tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    small_method(ws.root, tiny_model_dir, candidates=4,
                 training={"max_train_steps": 2, "resolution": 64, "sample_steps": 2})
    return load_workspace(ws.root)


def seed_rows(ws, slug: str) -> list[ImageRow]:  # type: ignore[no-untyped-def]
    from lorastrap.dataset.sources import seed_images
    from lorastrap.queries import get_character

    with ws.session() as s:
        return seed_images(s, get_character(s, slug))


def _captions(ws, slug: str, number: int) -> list[str]:  # type: ignore[no-untyped-def]
    out = ws.datasets_dir(slug) / f"v{number}"
    export_dataset(ws, slug, f"v{number}", out)
    return sorted(p.read_text().strip() for p in out.rglob("*.txt"))


@pytest.mark.slow
def test_full_loop(workspace, tiny_model_dir: Path, seed_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = _configure(workspace, tiny_model_dir)
    added = add_character(ws, "Kitsune", [seed_image], ", ".join(IDENTITY))
    slug, trigger = added.slug, added.trigger
    assert character_status(ws, slug)[0].stage == "seeded"

    # round 1: style LoRA on the 4 seed crops, then candidates across views + a contact sheet
    step = bootstrap_step(ws, slug, progress=False)
    assert step.step == "train-style" and len(step.candidates) == 4
    assert step.contact_sheet and step.contact_sheet.is_file()
    views = {json.loads(Image.open(p).text["lorastrap"])["view"] for p in step.candidates}
    assert len(views) == 4  # spread over views, not 4 × front
    # each started from a seed crop's colours (the default candidate_start = "seed")
    seed_shas = {row.sha256 for row in seed_rows(ws, slug)}
    starts = [json.loads(Image.open(p).text["lorastrap"])["start"] for p in step.candidates]
    assert all(s["source_sha256"] in seed_shas and s["strength"] == 0.9 for s in starts)
    st = character_status(ws, slug)[0]
    assert (st.stage, st.round, st.threshold) == ("candidates", 1, 6)

    # precondition: 4 of 6 images → refused with the reason, nothing trained
    with pytest.raises(PreconditionFailed, match="4 of 6"):
        bootstrap_step(ws, slug, progress=False)

    # the person keeps one candidate as is, one edited by hand (same name), and imports a foreign one
    kept, edited = step.candidates[0], step.candidates[1]
    curate(ws, slug, keep=[kept])
    im = Image.open(edited).convert("RGB")
    im.putpixel((0, 0), (1, 2, 3))
    im.save(ws.curated_dir(slug) / edited.name)
    foreign = ws.curated_dir(slug) / "drawn-by-hand.png"
    shutil.copy(seed_image, tmp_path / "x.png")
    Image.open(seed_image).rotate(90, expand=True).save(foreign)
    (ws.curated_dir(slug) / "drawn-by-hand.txt").write_text("dancing, smile")

    step2 = bootstrap_step(ws, slug, progress=False)
    assert step2.step == "train-style"
    with ws.open_registry() as reg, reg.session() as s:
        origins = {r.file_name: (r.origin, r.parent_id) for r in s.scalars(select(ImageRow))}
        loras = list(s.scalars(select(Lora).order_by(Lora.id)))
        versions = list(s.scalars(select(DatasetVersion).order_by(DatasetVersion.number)))
    assert origins[kept.name][0] == "generated"
    assert origins[edited.name][0] == "edited" and origins[edited.name][1] is not None
    assert origins["drawn-by-hand.png"][0] == "imported"
    assert [l.kind for l in loras] == ["style", "style"]
    assert loras[1].parent_lora_id == loras[0].id and loras[1].round == 2
    # v2 = the kept candidate (curate syncs at once), v3 = + the edit and the import
    assert [v.kind for v in versions] == ["style", "style", "style"]
    assert loras[1].dataset_version_id == versions[2].id

    captions = _captions(ws, slug, 3)
    assert len(captions) == 7  # 4 seed items stay in every round + 3 curated
    assert f"{trigger}, dancing, smile" in captions  # the person's caption wins (trigger first)
    policy_caps = [c for c in captions if c != f"{trigger}, dancing, smile"]
    assert all(c.startswith(f"{trigger}, {', '.join(IDENTITY)}") for c in policy_caps)
    diff = diff_datasets(ws, slug, "v1", "v3")
    assert len(diff["added"]) == 3 and not diff["removed"]

    # round 2 → character: 8 images needed; keep one more candidate of round 2
    curate(ws, slug, keep=[step2.candidates[0]])
    preview = preview_captions(ws, slug)
    pruned = set(IDENTITY) - {"1girl", "solo"}  # class tags stay (kohya class-token practice)
    assert preview and all(not pruned & set(r["caption"].split(", ")) for r in preview)
    step3 = bootstrap_step(ws, slug, progress=False)
    assert step3.step == "train-character"
    done = character_status(ws, slug)[0]
    assert done.stage == "character_trained" and done.recommended is None  # the check is off by default
    # without a check, status points at the last style round, prompted as it was captioned
    assert (done.suggested["kind"], done.suggested["round"]) == ("style", 2)
    assert done.suggested["prompt"] == f"{trigger}, {', '.join(IDENTITY)}" and "lab" in done.suggested["why"]
    character_caps = _captions(ws, slug, 4)
    assert all(c.startswith(trigger) for c in character_caps)
    assert not any(tag in c.split(", ") for c in character_caps for tag in pruned)
    assert all(c.startswith(f"{trigger}, 1girl, solo") for c in character_caps if "dancing" not in c)

    # a finished step is a no-op
    again = bootstrap_step(ws, slug, progress=False)
    assert again.step == "noop"

    tree = lineage_tree(ws, slug)
    chain = tree["loras"][0]
    assert (chain["kind"], chain["round"]) == ("style", 1)
    assert chain["children"][0]["children"][0]["kind"] == "character"
    assert "character" in render_lineage(tree, "text") and "->" in render_lineage(tree, "dot")
    assert chain["children"][0]["suggested"] and not chain["children"][0]["children"][0]["suggested"]
    assert "☆ suggested final LoRA" in render_lineage(tree, "text")

    out = export_dataset(ws, slug, "v4", tmp_path / "kohya")
    config = tomllib.loads((tmp_path / "kohya" / "dataset_config.toml").read_text())
    subsets = config["datasets"][0]["subsets"]
    assert sum(len(list(Path(s["image_dir"]).glob("*.png"))) for s in subsets) == out["items"] == 8
    assert {s["num_repeats"] for s in subsets} == {1, 2}  # curated once, seed weighted up
