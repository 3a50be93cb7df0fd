"""`export sprites` writes its folder as a whole: a reader — or a `kill -9` at any point — sees
the old export or the new one, never a mix; what a killed export leaves is cleaned up by the next
one; the registry row is written last; sizes that cannot fit are refused before allocating.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from game_export.synthetic import Figure, draw_frame, save_frame
from lorastrap.kernel.atomic import recover_dir
from registry.models import Export

SLUG = "kitsune"


@pytest.fixture
def exported(workspace, seed_images, cli_run):  # type: ignore[no-untyped-def]
    """A character with 4 candidate frames in candidates/r1 (and its contact sheet), exported once."""
    r = cli_run("character", "add", "Kitsune", *[a for p in seed_images for a in ("--image", str(p))],
                "--tags", "1girl, solo, fox ears", "--crop", "none")
    assert r.code == 0, r.err
    folder = workspace.candidates_dir(SLUG, 1)
    for i in range(4):
        image, _ = draw_frame((96, 128), Figure(x=20 + 4 * i, y=8, height=110, colour=(180, 60, 60)))
        save_frame(image, folder / f"gen_{i}.png", view="front")
    image, _ = draw_frame((256, 128), Figure(x=100, y=8, height=110, colour=(20, 200, 20)))
    save_frame(image, folder / "contact-sheet.png")  # what `bootstrap` writes beside the candidates
    r = cli_run("export", "sprites", SLUG, "--from", "candidates/r1", "--engine", "godot4", "--no-progress")
    assert r.code == 0, r.err
    return workspace.exports_dir(SLUG) / "sprites"


def _contents(folder: Path, snapshot) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return snapshot(folder) if folder.exists() else {}


def _export_count(ws) -> int:  # type: ignore[no-untyped-def]
    with ws.open_registry() as reg, reg.session(write=False) as s:
        return s.scalar(select(func.count(Export.id)))


def test_contact_sheet_is_not_a_frame_and_old_files_go(exported, workspace, cli_run) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((exported / f"{SLUG}_export.json").read_text())
    sources = {Path(f["source"]).name for f in manifest["frames"]}
    assert sources == {f"gen_{i}.png" for i in range(4)}  # no contact-sheet.png
    (exported / f"{SLUG}.png.import").write_text("[remap]\n")  # what Godot writes beside a texture
    r = cli_run("export", "sprites", SLUG, "--from", "candidates/r1", "--engine", "unity", "--no-progress")
    assert r.code == 0, r.err
    names = {p.name for p in exported.iterdir()}
    assert f"{SLUG}.png.meta" in names and f"{SLUG}.png.import" in names  # Godot's file carried over
    assert f"{SLUG}.tres" not in names  # the previous export's file this one does not write
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no stage left


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import lorastrap.kernel.atomic as atomic
    import lorastrap.export.sprites as sprite_export
    from lorastrap.export.sprites import SpriteOptions, export_character_sprites
    from lorastrap.workspace import load_workspace

    point = sys.argv[2]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    real_exchange, real_rename = atomic._exchange, atomic._rename
    if point == "staging":          # the stage is half written
        real_write = Path.write_bytes
        calls = []
        def write_bytes(self, data):
            calls.append(self)
            if len(calls) == 2:
                die()
            return real_write(self, data)
        Path.write_bytes = write_bytes
    elif point == "before-swap":    # the stage is complete (foreign files carried), not swapped
        atomic._carry = die
    elif point == "after-swap":     # swapped; the old folder not yet deleted
        atomic._exchange = lambda a, b: real_exchange(a, b) and die()
    elif point == "before-row":     # the new export is in place; its registry row is not written
        sprite_export._origins = die
    elif point == "between-renames":  # no RENAME_EXCHANGE: killed after old -> .old, before stage -> new
        atomic._exchange = lambda a, b: False
        calls = []
        def rename(src, dst):
            calls.append(src)
            real_rename(src, dst)
            if len(calls) == 1:
                die()
        atomic._rename = rename
    ws = load_workspace(Path(sys.argv[1]))
    export_character_sprites(ws, "kitsune", SpriteOptions(source="candidates/r1", engines=("unity",),
                                                          pivot="0.5,0.9", progress=False))
    print("finished")
""")


@pytest.mark.parametrize("point", ["staging", "before-swap", "after-swap", "before-row", "between-renames"])
def test_kill_9_at_any_point_leaves_the_old_export_or_the_new_one(point, exported, workspace, cli_run,  # type: ignore[no-untyped-def]
                                                                 snapshot) -> None:
    old = _contents(exported, snapshot)
    rows = _export_count(workspace)
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(workspace.root), point],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    leftovers = [p.name for p in exported.parent.iterdir() if p.name.startswith(".")]
    assert bool(leftovers) == (point != "before-row")  # a stage or the old folder is left ...
    if point == "between-renames":
        # Only where the system cannot exchange two folders atomically: the folder is missing
        # until the next export (or `recover_dir`) puts the old one back.
        assert not exported.exists()
        recover_dir(exported)
    now = _contents(exported, snapshot)
    manifest = json.loads((exported / f"{SLUG}_export.json").read_text())
    if point in ("after-swap", "before-row"):
        assert now != old and manifest["engines"] == ["unity"] and manifest["pivot"] == [0.5, 0.9]
        assert all((exported / f).is_file() for f in manifest["files"])  # the whole new export
    else:
        assert now == old  # the whole old export, byte for byte
    assert _export_count(workspace) == rows  # the row is written last: none for a killed export

    r = cli_run("export", "sprites", SLUG, "--from", "candidates/r1", "--engine", "json", "--no-progress")
    assert r.code == 0, r.err  # ... and the next export cleans it up
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]
    assert _export_count(workspace) == rows + 1
    assert json.loads((exported / f"{SLUG}_export.json").read_text())["engines"] == ["json"]


def test_sizes_that_cannot_fit_are_refused_before_allocating(exported, workspace, snapshot, lorastrap_argv) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(workspace.root)
    # A real memory cap (as `ulimit -v` in a shell): the export must refuse, not be killed.
    argv = lorastrap_argv(workspace.root, "export", "sprites", SLUG, "--from", "candidates/r1", "--size", "12000",
                          "--max-texture-size", "16384", "--no-progress")
    script = f"ulimit -v 2500000; exec {shlex.join(map(str, argv))}"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "this export needs about" in proc.stderr and "MemoryError" not in proc.stderr
    proc = subprocess.run(lorastrap_argv(workspace.root, "export", "sprites", SLUG, "--from", "candidates/r1",
                                         "--size", "9000"), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and "more than --max-texture-size 4096" in proc.stderr
    assert snapshot(workspace.root) == before


def test_export_folders_that_must_not_be_replaced(exported, workspace, cli_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for out, words in ((workspace.root, "holds the workspace"), (workspace.root.parent, "holds the workspace"),
                       (workspace.curated_dir(SLUG), "one of the workspace's own folders"),
                       (workspace.state_dir / "x", "one of the workspace's own folders")):
        r = cli_run("export", "sprites", SLUG, "--from", "candidates/r1", "--out", str(out), "--no-progress")
        assert r.code == 2 and words in r.err, (out, r.err)
    mine = tmp_path / "my-art"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    r = cli_run("export", "sprites", SLUG, "--from", "candidates/r1", "--out", str(mine), "--no-progress")
    assert r.code == 2 and "already holds other files and no export of kitsune" in r.err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_recover_dir_puts_the_old_folder_back_and_removes_dead_stages(tmp_path: Path) -> None:
    final = tmp_path / "out"
    old = tmp_path / ".out.old-999999"  # a pid that does not run
    old.mkdir()
    (old / "a.txt").write_text("old")
    stage = tmp_path / ".out.999999.abcd.stage"
    stage.mkdir()
    live = tmp_path / f".out.{os.getpid()}.efgh.stage"  # this process: busy, not stale
    live.mkdir()
    recover_dir(final)
    assert (final / "a.txt").read_text() == "old"
    assert not old.exists() and not stage.exists() and live.exists()


def test_a_decompression_bomb_among_the_frames_is_a_one_line_error(exported, workspace, cli_run, tmp_path,  # type: ignore[no-untyped-def]
                                                                   snapshot) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "a.png").write_bytes((workspace.candidates_dir(SLUG, 1) / "gen_0.png").read_bytes())
    (frames / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                                   + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    before = snapshot(workspace.root)
    r = cli_run("export", "sprites", SLUG, "--from", str(frames), "--no-progress")
    assert r.code == 2 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    assert "b.png" in r.err and ("pixel limit" in r.err or "decompression bomb" in r.err)
    assert snapshot(workspace.root) == before
