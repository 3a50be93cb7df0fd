"""One unit of work per command: a `bootstrap` step opens the registry at most twice (measured)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import small_method

import registry.db
from lorastrap.characters import add_character
from lorastrap.method.step import bootstrap_step, character_status
from lorastrap.workspace import load_workspace

IDENTITY = "1girl, solo, fox ears, fox tail, blonde hair"


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every registry opened (engine built, migrations checked), by URL."""
    seen: list[str] = []
    real = registry.db.Registry.__init__

    def counting(self, url: str, *, migrate: bool = True) -> None:  # type: ignore[no-untyped-def]
        seen.append(url)
        real(self, url, migrate=migrate)

    monkeypatch.setattr(registry.db.Registry, "__init__", counting)
    return seen


def _small(ws, tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    small_method(ws.root, tiny_model_dir, candidates=2,
                 training={"max_train_steps": 1, "resolution": 64, "sample_steps": 1})
    return load_workspace(ws.root)


@pytest.mark.slow
def test_a_bootstrap_step_opens_the_registry_once(workspace, tiny_model_dir: Path, seed_image: Path,  # type: ignore[no-untyped-def]
                                                  cli_run, opens: list[str]) -> None:
    ws = _small(workspace, tiny_model_dir)
    slug = add_character(ws, "Kitsune", [seed_image], IDENTITY).slug

    # the command: train style round 1, generate the round's candidates, record every row
    opens.clear()
    result = cli_run("bootstrap", slug)
    assert result.code == 0, result.err
    assert "trained style LoRA" in result.out and "generated 2 candidates" in result.out
    assert len(opens) <= 2, opens
    assert len(opens) == 1  # today: exactly one

    # the library call outside any unit is a unit of its own (auto-curate, sync, train, generate)
    opens.clear()
    step = bootstrap_step(load_workspace(ws.root), slug, auto_curate=2, progress=False)
    assert step.step == "train-style" and len(step.candidates) == 2
    assert len(opens) == 1, opens

    # a read-only command: one open, and outside a unit each call still opens its own
    opens.clear()
    assert cli_run("status", slug).code == 0
    assert len(opens) == 1
    opens.clear()
    character_status(ws, slug)
    character_status(ws, slug)
    assert len(opens) == 2
