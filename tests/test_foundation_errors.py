"""Bad input to `character add`: a one-line error, exit 2, and nothing lost or half-written.

"Byte-identical" here is the strongest honest version: every file under the workspace, the SQLite
registry file included, has the same bytes afterwards, and no file or folder appeared or vanished.
That holds because every command closes its connections, and closing the last connection of a WAL
database checkpoints it and deletes the -wal/-shm files; a failed command rolls its transaction
back before any page reaches the WAL. So at rest the registry is one file whose bytes are its
whole state (the snapshot asserts no -wal file is left lying around).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from lorastrap.characters import add_character
from lorastrap.workspace import load_workspace

TRIGGER = "kitsu21girl"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height but that carries almost no data."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _corrupt_png(source: Path) -> bytes:
    data = bytearray(source.read_bytes())
    start = data.find(b"IDAT") + 10
    for k in range(start, start + 24):
        data[k] ^= 0xFF
    return bytes(data)


@pytest.fixture(scope="module")
def populated_template(tmp_path_factory, _workspace_template) -> Path:  # type: ignore[no-untyped-def]
    """A workspace that already holds one character (so duplicates and the blob store are real)."""
    root = tmp_path_factory.mktemp("populated") / "ws"
    shutil.copytree(_workspace_template, root)
    seed = root.parent / "kitsune.png"
    im = Image.new("RGB", (128, 160), (240, 230, 220))
    im.paste((200, 120, 40), (30, 10, 98, 70))
    im.save(seed)
    add_character(load_workspace(root), "Kitsune", [seed], "1girl, fox ears", trigger=TRIGGER)
    return root


@pytest.fixture
def populated(populated_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    root = tmp_path / "ws"
    shutil.copytree(populated_template, root)
    monkeypatch.delenv("LORASTRAP_WORKSPACE", raising=False)
    monkeypatch.chdir(root)
    return load_workspace(root)


def _inputs(make_png: Callable[..., Path], tmp_path: Path) -> dict[str, list[Path]]:
    good = make_png("good.png")
    bad_dir = tmp_path / "inputs"

    def write(name: str, data: bytes) -> Path:
        (bad_dir / name).write_bytes(data)
        return bad_dir / name

    four = [make_png(f"p{i}.png", hue=30 * i) for i in range(4)]
    return {
        "good": [good],
        "missing": [bad_dir / "nope.png"],
        "folder": [bad_dir],
        "text": [write("notes.png", b"these are my notes, not a picture\n")],
        "truncated": [write("half.png", good.read_bytes()[: len(good.read_bytes()) // 2])],
        "corrupt": [write("corrupt.png", _corrupt_png(good))],
        "tiny": [make_png("tiny.png", size=(48, 40))],
        "over_limit": [write("huge.png", _png_header_only(9000, 9000))],
        "bomb": [write("bomb.png", _png_header_only(30000, 30000))],
        "two": four[:2],
        "same_twice": [four[0]] * 4,
        "four": four,
        "three_good_one_corrupt": [*four[:3], write("p3bad.png", _corrupt_png(four[3]))],
    }


CASES = [
    # (id, name, images key, extra args, expected message fragment)
    ("missing-file", "Mika", "missing", [], "no such file"),
    ("a-folder", "Mika", "folder", [], "not a file"),
    ("not-an-image", "Mika", "text", [], "not an image"),
    ("truncated", "Mika", "truncated", [], "corrupt or truncated"),
    ("corrupt", "Mika", "corrupt", [], "corrupt or truncated"),
    ("too-small", "Mika", "tiny", [], "smaller than 64 px"),
    ("over-pixel-limit", "Mika", "over_limit", [], "over the pixel limit"),
    ("decompression-bomb", "Mika", "bomb", [], "decompression bomb"),
    ("one-bad-among-four", "Mika", "three_good_one_corrupt", [], "p3bad.png: corrupt"),
    ("duplicate-name", "Kitsune", "good", [], "a character 'kitsune' already exists"),
    ("duplicate-name-other-spelling", "KITSUNE ", "good", [], "already exists"),
    ("duplicate-trigger", "Mika", "good", ["--trigger", TRIGGER], "is used by another character"),
    ("bad-trigger", "Mika", "good", ["--trigger", "two words"], "3-40 characters"),
    ("path-separator", "../evil", "good", [], "path separator"),
    ("backslash", "a\\b", "good", [], "path separator"),
    ("reserved-name", "inbox", "good", [], "is reserved"),
    ("empty-name", "   ", "good", [], "name is empty"),
    ("two-images", "Mika", "two", [], "cannot seed a character"),
    ("same-image-twice", "Mika", "same_twice", [], "same image was given twice"),
    ("crop-with-many-images", "Mika", "four", ["--crop", "quad"], "splits ONE image"),
    ("no-tags", "Mika", "good", ["--tags", " , _ ,"], "no tags given"),
]


@pytest.mark.parametrize(("name", "key", "extra", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_changes_nothing(populated, make_png, tmp_path, cli_run, snapshot,
                                   name, key, extra, message) -> None:  # type: ignore[no-untyped-def]
    images = _inputs(make_png, tmp_path)[key]
    before = snapshot(populated.root)
    assert "characters/kitsune/datasets/v1/dataset_config.toml" in before
    assert not any(k.endswith(("-wal", "-shm")) for k in before)

    argv = ["character", "add", name, *(a for p in images for a in ("--image", str(p)))]
    if "--tags" not in extra:
        argv += ["--tags", "1girl, cat ears"]
    r = cli_run(*argv, *extra)

    assert r.code == 2, (r.out, r.err)
    assert r.out == ""
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
    assert message in r.err and "Traceback" not in r.err
    assert snapshot(populated.root) == before


def test_a_good_add_after_errors_still_works(populated, make_png, cli_run) -> None:
    """The error cases above would pass vacuously if `add` never wrote anything: show it does."""
    r = cli_run("character", "add", "Mika", "--image", str(make_png("good.png")), "--tags", "1girl")
    assert r.code == 0, r.err
    assert (populated.root / "characters" / "mika" / "datasets" / "v1").is_dir()


@pytest.mark.parametrize("fresh", [True, False], ids=["first-character", "second-character"])
def test_failure_after_files_were_written_undoes_them(
    fresh, request, seed_image, snapshot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A crash late in `add` (here: the dataset export) rolls back the rows AND the new files."""
    ws = request.getfixturevalue("workspace" if fresh else "populated")
    assert (ws.state_dir / "blobs").exists() is not fresh
    before = snapshot(ws.root)
    written: list[Path] = []

    def failing_export(items, blobs, out_dir, **kwargs):  # type: ignore[no-untyped-def]
        written.extend(p for p in ws.root.rglob("*.png"))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lorastrap.characters.export_kohya", failing_export)
    with pytest.raises(OSError, match="No space left"):
        add_character(ws, "Late Failure", [seed_image], "1girl")
    assert any("late-failure" in p.as_posix() for p in written)  # files existed when it failed
    assert any("/blobs/" in p.as_posix() for p in written)
    assert snapshot(ws.root) == before
