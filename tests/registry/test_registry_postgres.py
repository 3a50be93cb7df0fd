"""The registry on a real PostgreSQL server (started by the `pgserver` wheel; skipped without it)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import select

from lorastrap.characters import add_character, edit_tags, list_characters, remove_character, show_character
from lorastrap.dataset.versions import ItemSpec, apply_changes, version_items
from lorastrap.workspace import load_workspace
from registry.db import make_engine, open_registry
from registry.migrate import downgrade, head_revision, upgrade
from registry.models import Character, Image

_names = itertools.count()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    pgserver = pytest.importorskip("pgserver", reason="pgserver wheel not installed (pip install -e .[test])")
    pytest.importorskip("psycopg2", reason="psycopg2 not installed (pip install -e .[postgres])")
    pgdata = tmp_path_factory.mktemp("pg")
    # pgserver gives pg_ctl 10 s; a loaded machine can miss that once, and the retry then finds
    # the initialised data folder (and often the server already up).
    for attempt in (1, 2):
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
            break
        except Exception as exc:  # no binaries for this platform, no shared memory, too slow ...
            if attempt == 2:
                pytest.skip(f"cannot start a PostgreSQL server here: {exc.__class__.__name__}: {exc}")
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(pg_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database; plain `postgresql://` URL as a user would write it."""
    name = f"lorastrap_t{next(_names)}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return pg_server.get_uri(name)


def test_open_migrates_and_models_agree(pg_url: str, schema_diff) -> None:  # type: ignore[no-untyped-def]
    with open_registry(pg_url) as reg:
        assert reg.dialect == "postgresql" and reg.current_revision() == head_revision()
        assert schema_diff(reg.engine) == []
    engine = make_engine(pg_url)
    downgrade(engine, "base")
    upgrade(engine)
    assert schema_diff(engine) == []
    engine.dispose()


def test_character_round_trip_through_the_services(pg_url: str, workspace, seed_image: Path) -> None:
    toml = workspace.root / "lorastrap.toml"
    toml.write_text(toml.read_text().replace('database_url = ""', f'database_url = "{pg_url}"'))
    ws = load_workspace(workspace.root)
    assert ws.database_url == pg_url

    result = add_character(ws, "Kitsune 狐", [seed_image], "1girl, fox_ears, Solo", trigger="kitsu21pg")
    assert (result.slug, result.dataset_items) == ("kitsune", 4)

    info = show_character(ws, "kitsune")
    assert (info["name"], info["trigger"], info["identity_tags"]) == ("Kitsune 狐", "kitsu21pg",
                                                                    ["1girl", "fox ears", "solo"])
    assert [v["items"] for v in info["dataset_versions"]] == [4]
    assert [(r["slug"], r["dataset_version"]) for r in list_characters(ws)] == [("kitsune", 1)]
    assert edit_tags(ws, "kitsune", "add", ["fox tail"]) == ["1girl", "fox ears", "solo", "fox tail"]

    with ws.open_registry() as reg, reg.session() as s:
        c = s.scalars(select(Character).where(Character.slug == "kitsune")).one()
        crops = s.scalars(select(Image).where(Image.character_id == c.id, Image.origin == "crop")).all()
        assert len(crops) == 3 and all(im.provenance["crop"] == "zoom" for im in crops)
        v2 = apply_changes(s, c, add=[ItemSpec(crops[0].id, "kitsu21pg, recaptioned", 2)])
        assert v2 is not None and v2.number == 2 and v2.item_count == 4
        assert "kitsu21pg, recaptioned" in {it.caption for it in version_items(s, v2)}

    remove_character(ws, "kitsune")
    assert list_characters(ws) == []
