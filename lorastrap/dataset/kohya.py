"""Writing a dataset version in the kohya sd-scripts folder layout, plus `dataset_config.toml`
(`lorastrap dataset export`).

`<out>/<repeats>_<trigger> <class>/<image>.png` + `<image>.txt`; kohya's DreamBooth-style loader
reads the repeat count from the folder name and the caption from the sidecar file.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lorastrap.dataset.captions import CLASS_TAGS
from lorastrap.dataset.versions import VersionItem, get_version, list_versions, version_items
from lorastrap.kernel.atomic import replaced_dir
from lorastrap.queries import get_character
from lorastrap.tags import identity_tags
from lorastrap.workspace import Workspace
from registry.blobs import BlobStore

DATASET_CONFIG = "dataset_config.toml"

def class_token(identity_tags: Sequence[str]) -> str:
    """The kohya class word: the first of 1girl/1boy/… among the identity tags, else `character`."""
    for tag in identity_tags:
        if tag in CLASS_TAGS and tag != "solo":
            return tag
    return "character"


def item_file_stem(item: VersionItem) -> str:
    stem = Path(item.image.file_name).stem if item.image.file_name else ""
    return f"{stem}-{item.image.sha256[:8]}" if stem else item.image.sha256[:16]


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dataset_config_toml(subsets: Sequence[tuple[str, int]], resolution: int, trigger: str) -> str:
    lines = [
        "# sd-scripts dataset config: train_network.py --dataset_config dataset_config.toml",
        "[general]",
        "shuffle_caption = false",
        'caption_extension = ".txt"',
        "keep_tokens = 1  # the trigger word stays first",
        "",
        "[[datasets]]",
        f"resolution = {resolution}",
        "batch_size = 1",
        "enable_bucket = true",
        "",
    ]
    for folder, repeats in subsets:
        lines += [
            "  [[datasets.subsets]]",
            f"  image_dir = {_toml_str(folder)}",
            f"  num_repeats = {repeats}",
            f"  class_tokens = {_toml_str(trigger)}",
            "",
        ]
    return "\n".join(lines)


def export_kohya(
    items: Sequence[VersionItem], blobs: BlobStore, out_dir: Path, *, trigger: str,
    identity_tags: Sequence[str], resolution: int = 512,
) -> list[Path]:
    """Write the items atomically into `out_dir` (replaced as a whole). Returns the folders."""
    cls = class_token(identity_tags)
    by_repeats: dict[int, list[VersionItem]] = defaultdict(list)
    for item in items:
        by_repeats[item.repeats].append(item)
    folders: list[tuple[str, int]] = []
    out_dir = Path(out_dir)
    with replaced_dir(out_dir, marker=DATASET_CONFIG) as stage:
        for repeats in sorted(by_repeats, reverse=True):
            folder = f"{repeats}_{trigger} {cls}"
            sub = stage / folder
            sub.mkdir()
            for item in by_repeats[repeats]:
                stem = item_file_stem(item)
                src = blobs.path(item.image.blob_path)
                shutil.copyfile(src, sub / f"{stem}{src.suffix}")
                (sub / f"{stem}.txt").write_text(item.caption + "\n", encoding="utf-8")
            folders.append((str((out_dir / folder).resolve()), repeats))
        (stage / DATASET_CONFIG).write_text(
            dataset_config_toml(folders, resolution, trigger), encoding="utf-8"
        )
    return [Path(f) for f, _ in folders]


def export_dataset(ws: Workspace, name: str, version: str | None, out: Path | None,
                   resolution: int = 512) -> dict[str, Any]:
    with ws.session() as s:
        c = get_character(s, name)
        v = get_version(s, c, version) if version else list_versions(s, c)[-1]
        out = ws.check_output_folder(Path(out) if out else ws.datasets_dir(c.slug) / f"v{v.number}",
                                     marker=DATASET_CONFIG)
        folders = export_kohya(version_items(s, v), ws.blobs, out, trigger=c.trigger,
                               identity_tags=identity_tags(c), resolution=resolution)
        return {"version": f"v{v.number}", "out": str(out), "folders": [f.name for f in folders],
                "items": v.item_count, "config": str(out / DATASET_CONFIG)}
