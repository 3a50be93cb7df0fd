"""Checks before writes: curate, names, tags and triggers, typed settings, progress output."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lorastrap.characters import add_character, edit_tags, list_characters
from lorastrap.kernel.errors import UserError


@pytest.fixture
def kit(workspace, seed_image):  # type: ignore[no-untyped-def]
    return add_character(workspace, "Kit", [seed_image], "1girl, solo, fox ears", seed_tags="flat color")


def _candidate(ws, name: str, colour=(200, 80, 40)) -> Path:  # type: ignore[no-untyped-def]
    path = ws.candidates_dir("kit", 1) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (96, 96), colour).save(path)
    return path


def test_curate_checks_every_file_before_copying_any(workspace, kit, cli_run, tmp_path, snapshot) -> None:  # type: ignore[no-untyped-def]
    good = _candidate(workspace, "front-1.png")
    bad = tmp_path / "BAD.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    before = snapshot(workspace.root)
    r = cli_run("curate", "kit", "--keep", str(good), "--keep", str(bad))
    assert r.code == 2 and "BAD.png: corrupt or truncated image" in r.err
    assert snapshot(workspace.root) == before  # not even the good one was copied
    r = cli_run("curate", "kit", "--keep", str(good))  # later curates are not poisoned
    assert r.code == 0 and "new dataset v2" in r.out, r.err
    assert (workspace.curated_dir("kit") / "front-1.png").read_bytes() == good.read_bytes()


def test_curate_a_different_file_with_a_kept_name_says_how_to_keep_both(workspace, kit, cli_run, tmp_path, snapshot) -> None:  # type: ignore[no-untyped-def]
    first = _candidate(workspace, "front-1.png")
    assert cli_run("curate", "kit", "--keep", str(first)).code == 0
    other = tmp_path / "elsewhere" / "front-1.png"
    other.parent.mkdir()
    Image.new("RGB", (96, 96), (10, 200, 10)).save(other)
    before = snapshot(workspace.root)
    r = cli_run("curate", "kit", "--keep", str(other))
    assert r.code == 2 and "already holds a different image named front-1.png" in r.err
    assert "to keep both" in r.err and "front-1-2.png" in r.err
    assert snapshot(workspace.root) == before
    r = cli_run("curate", "kit", "--keep", str(first))  # the same file again: nothing to do
    assert r.code == 0 and "no change" in r.out


def test_curate_reject_only_moves_candidates_and_undoes_on_failure(workspace, kit, cli_run, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    mine = tmp_path / "mine.png"
    Image.new("RGB", (96, 96)).save(mine)
    r = cli_run("curate", "kit", "--reject", str(mine))
    assert r.code == 2 and "only candidates" in r.err and mine.is_file()

    keep, drop = _candidate(workspace, "a.png"), _candidate(workspace, "b.png", (1, 2, 3))
    import lorastrap.method.curation

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise UserError("registry write failed")

    monkeypatch.setattr(lorastrap.method.curation, "sync_curated", broken)
    r = cli_run("curate", "kit", "--keep", str(keep), "--reject", str(drop))
    assert r.code == 2 and "registry write failed" in r.err
    assert drop.is_file() and not (drop.parent / ".rejected" / "b.png").exists()  # moved back
    assert not (workspace.curated_dir("kit") / "a.png").exists()  # copy removed


def test_names_tags_and_triggers(workspace, kit, seed_image, cli_run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match="seed tag of kit"):
        edit_tags(workspace, "kit", "add", ["flat color"])  # what the seed shows is not who she is
    with pytest.raises(UserError, match="already an identity tag"):
        edit_tags(workspace, "kit", "add", ["fox ears"], role="negative")
    with pytest.raises(UserError, match="also one of the tags"):
        edit_tags(workspace, "kit", "add", [kit.trigger])
    assert edit_tags(workspace, "kit", "add", ["green eyes\nlong hair"]) == [
        "1girl", "solo", "fox ears", "green eyes", "long hair"]  # a line break separates tags

    r = cli_run("character", "add", "Two", "--image", str(seed_image), "--tags", "1girl, solo", "--trigger", "solo")
    assert r.code == 2 and "also one of the tags" in r.err
    r = cli_run("character", "add", "a" * 201, "--image", str(seed_image), "--tags", "1girl")
    assert r.code == 2 and "at most 200" in r.err
    r = cli_run("character", "add", "two\nlines", "--image", str(seed_image), "--tags", "1girl")
    assert r.code == 2 and "control character" in r.err and len(r.err.strip().splitlines()) == 1
    assert [c["slug"] for c in list_characters(workspace)] == ["kit"]


def test_option_values_are_bounded_and_typed(workspace, kit, cli_run) -> None:  # type: ignore[no-untyped-def]
    for argv, words in ((["generate", "kit", "--steps", "0"], "0 is not in the range 1<=x<=1000"),
                        (["generate", "kit", "--cfg", "nan"], "'nan' is not a finite number"),
                        (["generate", "kit", "--weight", "inf"], "'inf' is not a finite number"),
                        (["export", "sprites", "kit", "--ppu", "0"], "0.0 is not in the range 0<x<=100000"),
                        (["export", "sprites", "kit", "--palette", "0"], "0 is not in the range 2<=x<=256"),
                        (["export", "sprites", "kit", "--size", "100000"], "not in the range 1<=x<=16384"),
                        (["clash", "kit", "--styles", "a", "--weights", "0.5,nan"], "nan is not a number from -10 to 10"),
                        (["train", "kit", "--kind", "style", "--set", "rank=abc"], "training option rank must be a whole number, not 'abc'"),
                        (["train", "kit", "--kind", "style", "--set", "flip=yes"], "training option flip must be true or false"),
                        (["train", "kit", "--kind", "style", "--set", "learning_rate=inf"], "learning_rate must be a finite number")):
        r = cli_run(*argv)
        assert r.code == 2 and words in r.err and "Traceback" not in r.err, (argv, r.err)


def test_lorastrap_toml_values_are_type_checked(workspace, cli_run) -> None:  # type: ignore[no-untyped-def]
    cfg = workspace.root / "lorastrap.toml"
    cfg.write_text(cfg.read_text().replace("thresholds = [4, 16, 40]", 'thresholds = ["four"]'))
    r = cli_run("character", "list")
    assert r.code == 2 and "[bootstrap] thresholds must be a list of whole numbers" in r.err


def test_progress_is_a_bar_on_a_terminal_lines_in_a_log_and_nothing_when_asked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.kernel import progress

    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    log = io.StringIO()  # not a terminal
    with progress.progress_bar(200, "generating", "img", stream=log) as bar:
        for _ in range(200):
            bar.update()
    lines = log.getvalue().splitlines()
    assert lines[0] == "generating: 10% (20/200 img)" and lines[-1] == "generating: 100% (200/200 img)"
    assert len(lines) == 10 and "\r" not in log.getvalue()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress.mode(True, Tty()) == "bar" and progress.mode(True, log) == "lines"
    with progress.suppressed():
        assert progress.mode(True, Tty()) == "off"
    monkeypatch.setenv(progress.ENV_VAR, "off")
    assert progress.mode(True, Tty()) == "off"


def test_no_progress_silences_the_worker_and_what_it_runs(workspace, kit, lorastrap_argv, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`worker --no-progress`: no bars and no progress lines from the jobs (training, generation)."""
    from lorastrap.jobs.manage import jobs_add

    jobs_add(workspace, "sleep", payload={"steps": 30, "step_s": 0.0})
    env = {**os.environ, "LORASTRAP_PROGRESS": "lines"}
    p = subprocess.run(lorastrap_argv(workspace.root, "worker", "--once", "--no-progress"), capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert "%" not in p.stderr and "\r" not in p.stderr
    jobs_add(workspace, "sleep", payload={"steps": 30, "step_s": 0.0})
    p = subprocess.run(lorastrap_argv(workspace.root, "worker", "--once"), capture_output=True, text=True,
                       timeout=120, env=env)
    assert "100% (30/30 step)" in p.stderr and "\r" not in p.stderr  # a log gets lines, not bars
