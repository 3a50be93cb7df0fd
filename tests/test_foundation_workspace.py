"""Finding the workspace (walk up, --workspace, LORASTRAP_WORKSPACE) and the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lorastrap.kernel.errors import UserError
from lorastrap.workspace import find_workspace


def test_found_by_walking_up_from_a_subfolder(workspace, cli_run, monkeypatch) -> None:
    deep = workspace.root / "characters" / "deep" / "er"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_workspace().root == workspace.root
    r = cli_run("db", "current")
    assert r.code == 0 and str(workspace.root / ".lorastrap" / "registry.sqlite3") in r.out


def test_outside_a_workspace_is_a_one_line_error(tmp_path, cli_run, monkeypatch) -> None:
    monkeypatch.delenv("LORASTRAP_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="run `lorastrap init`"):
        find_workspace()
    r = cli_run("character", "list")
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and "run `lorastrap init`" in r.err and "Traceback" not in r.err


def test_workspace_option_and_env_override_the_walk(workspace, seed_image, cli_run, tmp_path, monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = cli_run("--workspace", str(workspace.root), "character", "add", "Opt", "--image", str(seed_image),
                "--tags", "1girl")
    assert r.code == 0, r.err
    assert (workspace.root / "characters" / "opt").is_dir()
    monkeypatch.setenv("LORASTRAP_WORKSPACE", str(workspace.root))
    assert find_workspace().root == workspace.root
    assert [row["slug"] for row in json.loads(cli_run("character", "list", "--json").out)] == ["opt"]
    monkeypatch.setenv("LORASTRAP_WORKSPACE", str(elsewhere))  # not a workspace: say so, even from inside one
    monkeypatch.chdir(workspace.root)
    r = cli_run("character", "list")
    assert r.code == 2 and f"run `lorastrap init {elsewhere}`" in r.err


def test_bad_config_is_a_user_error(workspace, cli_run) -> None:
    (workspace.root / "lorastrap.toml").write_text("[images]\nmin_sid = 3\n")
    r = cli_run("character", "list")
    assert r.code == 2 and "unknown setting [images] min_sid" in r.err


def test_debug_shows_the_traceback(tmp_path, cli_run, monkeypatch) -> None:
    monkeypatch.delenv("LORASTRAP_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    r = cli_run("--debug", "character", "list")
    assert r.code == 2 and "Traceback (most recent call last)" in r.err and "UserError" in r.err


def _console_script() -> list[str]:
    exe = shutil.which("lorastrap", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from lorastrap.cli import main; main()"]


def test_console_entry_point_in_a_real_process(tmp_path) -> None:
    """The installed `lorastrap` script: exit codes, one-line stderr, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "LORASTRAP_WORKSPACE"}

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_console_script(), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=120)

    outside = run("character", "list", cwd=tmp_path)
    assert outside.returncode == 2 and outside.stdout == ""
    assert outside.stderr.startswith("error: not inside a lorastrap workspace")
    assert outside.stderr.count("\n") == 1 and "Traceback" not in outside.stderr

    made = run("init", "game", cwd=tmp_path)
    assert made.returncode == 0 and made.stdout.startswith("created workspace: ")
    assert (tmp_path / "game" / "lorastrap.toml").is_file()
    assert (tmp_path / "game" / ".lorastrap" / "registry.sqlite3").is_file()
