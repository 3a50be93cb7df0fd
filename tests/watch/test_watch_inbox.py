"""inbox/: a dropped folder becomes a character (same service as `character add`); bad drops are
moved to inbox/.rejected/ with a reason file, never deleted. Both while watching and with --once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lorastrap.characters import list_characters, show_character
from lorastrap.jobs import queue as jobs
from lorastrap.watch.inbox import REASON_FILE
from lorastrap.watch.observer import Watcher, watch
from lorastrap.watch.reactions import Reporter


def drop(inbox: Path, name: str, images: list[Path], tags: str | None) -> Path:
    folder = inbox / name
    folder.mkdir(parents=True)
    if tags is not None:
        (folder / "tags.txt").write_text(tags, encoding="utf-8")
    for img in images:
        shutil.copyfile(img, folder / img.name)
    return folder


def assert_rejected(ws, name: str, files: set[str], reason: str) -> None:  # type: ignore[no-untyped-def]
    where = ws.inbox_dir / ".rejected" / name
    assert not (ws.inbox_dir / name).exists()
    assert {p.name for p in where.iterdir()} == files | {REASON_FILE}  # nothing lost
    assert reason in (where / REASON_FILE).read_text()


@pytest.fixture
def images(make_png):  # type: ignore[no-untyped-def]
    return [make_png(f"p{i}.png", hue=30 * i) for i in range(4)]


def test_drops_while_watching(watch_ws, images, poll) -> None:  # type: ignore[no-untyped-def]
    messages: list[str] = []
    with watch_ws.open_registry() as reg, Watcher(watch_ws, reg, report=Reporter(messages.append)) as w:
        inbox = watch_ws.inbox_dir
        drop(inbox, "Mika Neko", [images[0]], "1girl, solo\ncat ears, Cat_Tail\n")
        drop(inbox, "empty", [], "1girl")
        drop(inbox, "no-tags", images[:1], None)
        drop(inbox, "two", images[:2], "1girl")
        drop(inbox, "blank-tags", images, " , \n")
        (inbox / "loose.png").write_bytes(images[0].read_bytes())

        [job] = poll(lambda: jobs.list_jobs(reg), timeout=30)
        poll(lambda: len(list((inbox / ".rejected").glob("*"))) == 4 if (inbox / ".rejected").is_dir() else False,
             timeout=30)
        poll(lambda: "mika-neko" in w.watched)
    info = show_character(watch_ws, "mika-neko")
    assert info["name"] == "Mika Neko" and info["identity_tags"] == ["1girl", "solo", "cat ears", "cat tail"]
    assert info["latest_dataset_version"] == 1
    assert (job["character"], job["payload"]) == ("mika-neko", {"slug": "mika-neko", "kind": "style",
                                                               "dataset_version": 1})
    assert (inbox / ".imported" / "Mika Neko" / "p0.png").is_file() and not (inbox / "Mika Neko").exists()
    assert_rejected(watch_ws, "empty", {"tags.txt"}, "no images in empty/")
    assert_rejected(watch_ws, "no-tags", {"p0.png"}, "no tags.txt in no-tags/")
    assert_rejected(watch_ws, "two", {"p0.png", "p1.png", "tags.txt"}, "2 images cannot seed a character")
    assert_rejected(watch_ws, "blank-tags", {"p0.png", "p1.png", "p2.png", "p3.png", "tags.txt"},
                    "tags.txt has no tags")
    assert [c["slug"] for c in list_characters(watch_ws)] == ["mika-neko"]
    assert sum("loose.png" in m for m in messages) == 1
    assert (inbox / "loose.png").is_file()


def test_watch_once_imports_drops_and_rejects_a_taken_name(watch_ws, images, seed_image) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.characters import add_character

    add_character(watch_ws, "kitsune", [seed_image], "1girl, fox ears")
    drop(watch_ws.inbox_dir, "kitsune", images, "1girl")
    drop(watch_ws.inbox_dir, "Tanuki", images, "1boy, tanuki ears")
    (watch_ws.inbox_dir / "Tanuki" / "readme.md").write_text("hi")
    messages: list[str] = []
    summary = watch(watch_ws, once=True, run_jobs=False, emit=messages.append, show_progress=False)
    assert summary == {"queued": 1}
    assert_rejected(watch_ws, "kitsune", {"p0.png", "p1.png", "p2.png", "p3.png", "tags.txt"}, "already exists")
    tanuki = show_character(watch_ws, "tanuki")
    assert tanuki["latest_dataset_version"] == 1 and tanuki["dataset_versions"][0]["items"] == 4
    assert "inbox/Tanuki: ignoring readme.md: not an image" in messages
    # a second run finds nothing new: no duplicate character, no new job
    assert watch(watch_ws, once=True, run_jobs=False, show_progress=False) == {"queued": 0}
    with watch_ws.open_registry() as reg:
        assert [j["character"] for j in jobs.list_jobs(reg)] == ["tanuki"]
