"""The watcher with a real watchdog observer on temp folders and a real registry: bursts, slow
copies, idempotence, deletes, ignored files, characters added while watching."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

import lorastrap.watch.observer as watcher_mod
from lorastrap.characters import add_character
from lorastrap.dataset.versions import version_items
from lorastrap.jobs import queue as jobs
from lorastrap.watch.observer import Watcher
from lorastrap.watch.reactions import Reporter
from registry.models import Character, DatasetVersion


@pytest.fixture
def pngs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`pngs(n, prefix)`: n distinct 64×64 PNG files (random pixels) outside the workspace."""
    rng = np.random.default_rng(7)

    def make(n: int, prefix: str = "img") -> list[Path]:
        out = tmp_path / "src"
        out.mkdir(exist_ok=True)
        paths = []
        for i in range(n):
            p = out / f"{prefix}{i:02d}.png"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p)
            paths.append(p)
        return paths

    return make


class Running:
    def __init__(self, ws, watcher: Watcher, messages: list[str], syncs: list[str]) -> None:  # type: ignore[no-untyped-def]
        self.ws, self.w, self.messages, self.syncs = ws, watcher, messages, syncs
        self.reg = watcher.reg

    def versions(self, slug: str = "kitsune") -> list[int]:
        with self.reg.session() as s:
            cid = s.scalars(select(Character.id).where(Character.slug == slug)).one()
            return list(s.scalars(select(DatasetVersion.number).where(DatasetVersion.character_id == cid)
                                  .order_by(DatasetVersion.number)))

    def jobs(self) -> list[dict]:  # type: ignore[type-arg]
        return list(reversed(jobs.list_jobs(self.reg, limit=500)))

    def settled(self, poll) -> None:  # type: ignore[no-untyped-def]
        poll(lambda: self.w.idle, timeout=20)


@pytest.fixture
def running(watch_ws, seed_image, monkeypatch, poll):  # type: ignore[no-untyped-def]
    """A character `kitsune` (dataset v1 from its seed) and a started watcher; no worker."""
    add_character(watch_ws, "kitsune", [seed_image], "1girl, solo, fox ears")
    syncs: list[str] = []
    real = watcher_mod.on_curated_settled

    def counted(ws, reg, slug, report, changed_since=None):  # type: ignore[no-untyped-def]
        syncs.append(slug)  # a spy: the real service still runs
        return real(ws, reg, slug, report, changed_since)

    monkeypatch.setattr(watcher_mod, "on_curated_settled", counted)
    messages: list[str] = []
    reg = watch_ws.open_registry()
    w = Watcher(watch_ws, reg, report=Reporter(messages.append)).start()
    r = Running(watch_ws, w, messages, syncs)
    r.settled(poll)  # the start-up check of kitsune: nothing changed
    assert syncs == ["kitsune"] and r.versions() == [1] and r.jobs() == []
    yield r
    w.stop()
    reg.close()


def test_a_burst_of_50_images_makes_one_version_and_one_job(running, pngs, poll) -> None:  # type: ignore[no-untyped-def]
    curated = running.ws.curated_dir("kitsune")
    for src in pngs(50):  # ~2 s of copying, gaps far shorter than the debounce
        shutil.copyfile(src, curated / src.name)
        time.sleep(0.04)
    [job] = poll(running.jobs)
    running.settled(poll)
    assert running.versions() == [1, 2] and len(running.jobs()) == 1
    assert job["kind"] == "train" and job["status"] == "queued" and job["character"] == "kitsune"
    assert job["payload"] == {"slug": "kitsune", "kind": "style", "dataset_version": 2}
    with running.reg.session() as s:
        v2 = s.scalars(select(DatasetVersion).where(DatasetVersion.number == 2)).one()
        names = {it.image.file_name for it in version_items(s, v2)}
    assert {f"img{i:02d}.png" for i in range(50)} <= names


def test_a_file_written_slowly_is_not_read_until_it_is_complete(running, pngs, poll) -> None:  # type: ignore[no-untyped-def]
    data = pngs(1)[0].read_bytes()
    target = running.ws.curated_dir("kitsune") / "slow.png"
    chunks = [data[i:i + len(data) // 4 + 1] for i in range(0, len(data), len(data) // 4 + 1)]
    with open(target, "wb") as fh:
        for chunk in chunks:  # pauses longer than debounce + stability checks
            fh.write(chunk)
            fh.flush()
            time.sleep(0.7)
            assert running.versions() == [1] and running.jobs() == []
    [job] = poll(running.jobs)
    running.settled(poll)
    assert running.versions() == [1, 2] and job["payload"]["dataset_version"] == 2
    assert not any("not snapshotted" in m for m in running.messages), "\n".join(running.messages)  # never read half a file
    with running.reg.session() as s:
        v2 = s.scalars(select(DatasetVersion).where(DatasetVersion.number == 2)).one()
        shas = {it.image.sha256 for it in version_items(s, v2) if it.image.file_name == "slow.png"}
    assert shas == {hashlib.sha256(data).hexdigest()}


def test_touch_and_identical_recopy_change_nothing_but_a_delete_does(running, pngs, poll) -> None:  # type: ignore[no-untyped-def]
    curated = running.ws.curated_dir("kitsune")
    srcs = pngs(3)
    for src in srcs:
        shutil.copyfile(src, curated / src.name)
    [first] = poll(running.jobs)
    running.settled(poll)
    assert running.versions() == [1, 2]

    for src in srcs:  # touch: new mtimes, same bytes
        (curated / src.name).touch()
        os.utime(curated / src.name, (time.time() + 5, time.time() + 5))
    n = len(running.syncs)
    for src in srcs:  # re-copy the same bytes over the same names: real write events
        shutil.copyfile(src, curated / src.name)
    poll(lambda: len(running.syncs) > n)
    running.settled(poll)
    assert running.versions() == [1, 2] and [j["id"] for j in running.jobs()] == [first["id"]]

    (curated / srcs[0].name).unlink()
    poll(lambda: len(running.jobs()) == 2)
    running.settled(poll)
    assert running.versions() == [1, 2, 3]
    old, new = running.jobs()
    assert new["payload"]["dataset_version"] == 3
    assert old["status"] == "cancelled" and old["error"] == f"superseded by job {new['id']}"
    assert new["status"] == "queued"
    assert any("dataset v3" in m and "-1" in m for m in running.messages)


def test_temporary_hidden_and_non_image_files(running, pngs, poll) -> None:  # type: ignore[no-untyped-def]
    curated = running.ws.curated_dir("kitsune")
    src = pngs(1)[0]
    shutil.copyfile(src, curated / "dl.png.part")
    shutil.copyfile(src, curated / "dl.png.crdownload")
    shutil.copyfile(src, curated / ".hidden.png")
    shutil.copyfile(src, curated / "backup.png~")
    (curated / "notes.pdf").write_bytes(b"%PDF-1.4")
    (curated / "notes.pdf").write_bytes(b"%PDF-1.4 again")
    poll(lambda: any("notes.pdf" in m for m in running.messages))
    time.sleep(running.ws.config.watch.debounce_s * 2)
    running.settled(poll)
    assert running.versions() == [1] and running.jobs() == [] and running.syncs == ["kitsune"]
    assert [m for m in running.messages if "notes.pdf" in m] == ["kitsune: ignoring curated/notes.pdf: not an image"]
    os.replace(curated / "dl.png.part", curated / "dl.png")  # the download finished: a rename
    [job] = poll(running.jobs)
    assert job["payload"]["dataset_version"] == 2


def test_a_character_added_while_watching_is_picked_up(running, pngs, make_png, poll) -> None:  # type: ignore[no-untyped-def]
    add_character(running.ws, "Mika", [make_png("mika.png", hue=90)], "1girl, cat ears")
    poll(lambda: "mika" in running.w.watched)
    src = pngs(1, prefix="mika")[0]
    shutil.copyfile(src, running.ws.curated_dir("mika") / src.name)
    [job] = poll(running.jobs)
    assert job["character"] == "mika" and job["payload"]["dataset_version"] == 2
    assert any("watching characters/mika/curated" in m for m in running.messages)


def test_a_version_whose_job_was_lost_in_a_crash_is_queued_on_the_next_pass(watch_ws, seed_image, pngs) -> None:  # type: ignore[no-untyped-def]
    """The snapshot commits, then the process dies before the enqueue: the next pass queues it."""
    from lorastrap.method.curation import sync_curated
    from lorastrap.watch.observer import watch

    add_character(watch_ws, "kitsune", [seed_image], "1girl, solo, fox ears")
    for p in pngs(2):
        shutil.copy(p, watch_ws.curated_dir("kitsune") / p.name)
    assert sync_curated(watch_ws, "kitsune").created  # the "crash" happens right after this commit
    assert watch(watch_ws, once=True, run_jobs=False, show_progress=False) == {"queued": 1}
    with watch_ws.open_registry() as reg:
        [job] = jobs.list_jobs(reg)
    assert job["payload"]["dataset_version"] == 2
    assert watch(watch_ws, once=True, run_jobs=False, show_progress=False) == {"queued": 0}
