"""The foundation end to end through the CLI: init → character add → list/show → tags → rm.

Real SQLite registry, real files, `lorastrap.cli.main` (the console entry point) via `cli_run`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from sqlalchemy import select

from lorastrap.images import CROP_VIEW_TAGS
from registry.models import Character, CharacterTag, DatasetItem, DatasetVersion, Image, Tag

TAGS = "1girl, Solo, fox_ears,  Blonde Hair , fox ears"
IDENTITY = ["1girl", "solo", "fox ears", "blonde hair"]


def _rows(ws, model, *where):  # type: ignore[no-untyped-def]
    with ws.open_registry() as reg, reg.session() as s:
        return list(s.scalars(select(model).where(*where)))


def _character(ws, slug: str) -> Character:  # type: ignore[no-untyped-def]
    rows = _rows(ws, Character, Character.slug == slug)
    assert len(rows) == 1, f"expected one character {slug!r}, got {rows}"
    return rows[0]


def _kohya_captions(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}


def test_init_creates_workspace_and_is_idempotent(cli_run, tmp_path: Path) -> None:
    target = tmp_path / "my-game"
    r = cli_run("init", str(target))
    assert r.code == 0, r.err
    assert "created workspace" in r.out
    assert (target / "lorastrap.toml").is_file()
    assert (target / ".lorastrap" / "registry.sqlite3").is_file()
    assert (target / "characters").is_dir() and (target / "inbox").is_dir()
    tomllib.loads((target / "lorastrap.toml").read_text())  # the written config parses
    config_before = (target / "lorastrap.toml").read_bytes()
    again = cli_run("init", str(target))
    assert again.code == 0 and "already a workspace" in again.out
    assert (target / "lorastrap.toml").read_bytes() == config_before


def test_add_one_image_makes_four_zoom_crops_and_a_kohya_dataset(workspace, seed_image, cli_run) -> None:
    r = cli_run("character", "add", "Kitsune", "--image", str(seed_image), "--tags", TAGS,
                "--trigger", "kitsu21girl")
    assert r.code == 0, r.err
    assert "4 crops" in r.out and "dataset v1: 4 items" in r.out

    c = _character(workspace, "kitsune")
    assert (c.display_name, c.trigger, c.stage) == ("Kitsune", "kitsu21girl", "seeded")
    with workspace.open_registry() as reg, reg.session() as s:
        roles = s.execute(
            select(Tag.text, CharacterTag.role).join(CharacterTag, CharacterTag.tag_id == Tag.id)
            .where(CharacterTag.character_id == c.id).order_by(CharacterTag.position)
        ).all()
        images = {im.id: im for im in s.scalars(select(Image).where(Image.character_id == c.id))}
        items = list(s.scalars(select(DatasetItem).where(DatasetItem.character_id == c.id)))
        versions = list(s.scalars(select(DatasetVersion).where(DatasetVersion.character_id == c.id)))
    assert roles == [(t, "identity") for t in IDENTITY]

    seeds = [im for im in images.values() if im.origin == "seed"]
    crops = [im for im in images.values() if im.origin == "crop"]
    assert len(seeds) == 1 and len(crops) == 3  # the full-frame piece is the seed itself
    seed = seeds[0]
    assert seed.sha256 == hashlib.sha256(seed_image.read_bytes()).hexdigest()
    for crop in crops:
        assert crop.parent_id == seed.id and crop.provenance["parent"] == seed.sha256
        assert crop.provenance["crop"] == "zoom" and crop.provenance["piece"] in CROP_VIEW_TAGS
    for im in images.values():  # content-addressed blobs: path from the hash, bytes match it
        blob = workspace.blobs.path(im.blob_path)
        assert im.blob_path == f"{im.sha256[:2]}/{im.sha256}.png"
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == im.sha256
        assert im.size_bytes == blob.stat().st_size

    assert [(v.number, v.kind, v.item_count, v.caption_policy) for v in versions] == [(1, "style", 4, "style")]
    assert len(items) == 4 and {it.image_id for it in items} == set(images)
    assert all((it.added_in, it.removed_in, it.repeats) == (1, None, 2) for it in items)

    out = workspace.root / "characters" / "kitsune" / "datasets" / "v1"
    folder = out / "2_kitsu21girl 1girl"
    base = "kitsu21girl, 1girl, solo, fox ears, blonde hair"
    expected = {
        f"seed-{seed.sha256[:8]}": f"{base}, full body\n",
        **{f"seed-{c.provenance['piece']}-{c.sha256[:8]}":
           f"{base}, {', '.join(CROP_VIEW_TAGS[c.provenance['piece']])}\n" for c in crops},
    }
    assert _kohya_captions(folder) == expected
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{stem}.png" for stem in expected] + [f"{stem}.txt" for stem in expected])
    by_prefix = {im.sha256[:8]: im for im in images.values()}
    for png in folder.glob("*.png"):
        im = by_prefix[png.stem.rsplit("-", 1)[1]]
        assert png.read_bytes() == workspace.blobs.path(im.blob_path).read_bytes()
    config = tomllib.loads((out / "dataset_config.toml").read_text())
    (subset,) = config["datasets"][0]["subsets"]
    assert Path(subset["image_dir"]) == folder.resolve() and subset["num_repeats"] == 2
    assert config["general"]["caption_extension"] == ".txt"
    crop_files = sorted(p.name for p in (workspace.root / "characters/kitsune/seed/crops").iterdir())
    assert crop_files == ["seed-bust.png", "seed-face.png", "seed-full.png", "seed-upper-body.png"]


def test_quad_crop_makes_four_child_images(workspace, seed_image, cli_run) -> None:
    r = cli_run("character", "add", "Quad", "--image", str(seed_image), "--tags", "1boy", "--crop", "quad")
    assert r.code == 0, r.err
    c = _character(workspace, "quad")
    crops = _rows(workspace, Image, Image.character_id == c.id, Image.origin == "crop")
    assert sorted(im.provenance["piece"] for im in crops) == ["bottom-left", "bottom-right", "top-left", "top-right"]
    assert {(im.width, im.height) for im in crops} == {(64, 96)}
    folder = workspace.root / f"characters/quad/datasets/v1/2_{c.trigger} 1boy"
    assert set(_kohya_captions(folder).values()) == {f"{c.trigger}, 1boy\n"}  # no framing tag for quad


def test_four_images_are_used_as_they_are(workspace, seed_images, cli_run) -> None:
    args = [a for p in seed_images for a in ("--image", str(p))]
    r = cli_run("character", "add", "Mika", *args, "--tags", "1girl, cat ears")
    assert r.code == 0, r.err
    c = _character(workspace, "mika")
    assert c.trigger and c.trigger != "mika"  # generated, rare-token style
    images = _rows(workspace, Image, Image.character_id == c.id)
    assert sorted(im.origin for im in images) == ["seed"] * 4
    assert sorted(im.file_name for im in images) == [f"pose{i}.png" for i in range(4)]
    folder = workspace.root / f"characters/mika/datasets/v1/2_{c.trigger} 1girl"
    assert list(_kohya_captions(folder).values()) == [f"{c.trigger}, 1girl, cat ears\n"] * 4
    assert sorted(p.name for p in (workspace.root / "characters/mika/seed").glob("*.png")) == [
        f"pose{i}.png" for i in range(4)]


def test_list_show_tags_rm_flow(workspace, seed_image, seed_images, cli_run) -> None:
    assert cli_run("character", "add", "Kitsune", "--image", str(seed_image), "--tags", TAGS).code == 0
    args = [a for p in seed_images for a in ("--image", str(p))]
    assert cli_run("character", "add", "狐娘 Mika", *args, "--tags", "1girl").code == 0

    listed = cli_run("character", "list", "--json")
    rows = json.loads(listed.out)
    assert [(r["slug"], r["name"], r["dataset_version"], r["loras"]) for r in rows] == [
        ("kitsune", "Kitsune", 1, 0), ("mika", "狐娘 Mika", 1, 0)]
    text = cli_run("character", "list")
    assert text.out.splitlines()[0].split()[:3] == ["SLUG", "NAME", "TRIGGER"] and "kitsune" in text.out

    shown = json.loads(cli_run("character", "show", "Kitsune", "--json").out)
    assert shown["identity_tags"] == IDENTITY and shown["latest_dataset_version"] == 1
    assert [v["items"] for v in shown["dataset_versions"]] == [4]
    assert "identity tags: 1girl, solo, fox ears, blonde hair" in cli_run("character", "show", "kitsune").out

    assert cli_run("tags", "add", "kitsune", "Fox_Tail, solo").code == 0
    assert cli_run("tags", "remove", "kitsune", "blonde hair").code == 0
    assert cli_run("tags", "add", "kitsune", "smile", "--role", "variable").code == 0
    got = json.loads(cli_run("tags", "show", "kitsune", "--json").out)
    assert got == {"role": "identity", "tags": ["1girl", "solo", "fox ears", "fox tail"]}
    c = _character(workspace, "kitsune")
    with workspace.open_registry() as reg, reg.session() as s:
        rows = s.execute(
            select(Tag.text, CharacterTag.role, CharacterTag.position)
            .join(CharacterTag, CharacterTag.tag_id == Tag.id)
            .where(CharacterTag.character_id == c.id)
            .order_by(CharacterTag.role, CharacterTag.position)
        ).all()
    assert rows == [("1girl", "identity", 0), ("solo", "identity", 1), ("fox ears", "identity", 2),
                    ("fox tail", "identity", 3), ("smile", "variable", 0)]
    missing = cli_run("tags", "remove", "kitsune", "wings")
    assert missing.code == 2 and "has no identity tag(s) wings" in missing.err
    assert cli_run("tags", "set", "kitsune", "1girl, fox ears").code == 0
    assert json.loads(cli_run("tags", "show", "kitsune", "--json").out)["tags"] == ["1girl", "fox ears"]

    removed = cli_run("character", "rm", "kitsune", "--yes")
    assert removed.code == 0 and "folder kept" in removed.out
    assert _rows(workspace, Character, Character.slug == "kitsune") == []
    assert _rows(workspace, CharacterTag, CharacterTag.character_id == c.id) == []
    assert _rows(workspace, DatasetVersion, DatasetVersion.character_id == c.id) == []
    assert _rows(workspace, DatasetItem, DatasetItem.character_id == c.id) == []
    orphans = _rows(workspace, Image, Image.file_name.like("seed%"))
    assert orphans and all(im.character_id is None for im in orphans)  # blobs are never deleted
    assert all(workspace.blobs.path(im.blob_path).is_file() for im in orphans)
    assert (workspace.root / "characters" / "kitsune" / "seed" / "seed.png").is_file()
    gone = cli_run("character", "show", "kitsune")
    assert gone.code == 2 and gone.err.startswith("error: no character 'kitsune'")
    assert [r["slug"] for r in json.loads(cli_run("character", "list", "--json").out)] == ["mika"]


def test_rm_purge_files_deletes_the_folder(workspace, seed_image, cli_run) -> None:
    assert cli_run("character", "add", "Gone", "--image", str(seed_image), "--tags", "1girl").code == 0
    assert cli_run("character", "rm", "gone", "--yes", "--purge-files").code == 0
    assert not (workspace.root / "characters" / "gone").exists()
