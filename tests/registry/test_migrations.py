"""Alembic migrations: empty → head, head → base → head, models == migrations, old data upgraded."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, inspect, select, text

from registry.db import make_engine, open_registry, sqlite_url
from registry.migrate import current_revision, downgrade, head_revision, upgrade
from registry.models import Base, Character, DatasetItem, DatasetVersion, Image, Job, Lora


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_empty_to_head_creates_every_model_table(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "r.sqlite3"))
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert table_names(engine) == set(Base.metadata.tables) | {"alembic_version"}


def test_models_and_migrations_agree(tmp_path: Path, schema_diff) -> None:
    engine = make_engine(sqlite_url(tmp_path / "r.sqlite3"))
    upgrade(engine)
    assert schema_diff(engine) == []


def test_the_comparison_would_notice_a_drift(tmp_path: Path, schema_diff) -> None:
    """Guards the test above against passing vacuously: a missing column is reported."""
    engine = make_engine(sqlite_url(tmp_path / "r.sqlite3"))
    upgrade(engine, "0001")
    kinds = {(d[0], d[3].name) for d in schema_diff(engine) if d[0] == "add_column"}
    assert ("add_column", "file_name") in kinds and ("add_column", "metrics") in kinds


def test_head_to_base_to_head(tmp_path: Path, schema_diff) -> None:
    engine = make_engine(sqlite_url(tmp_path / "r.sqlite3"))
    upgrade(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert table_names(engine) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_diff(engine) == []


def _fill_at_0001(engine: Engine) -> None:
    """Rows as the 0001 schema knew them (raw SQL: the ORM models are already at head)."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO characters (id, slug, display_name, trigger, base_model, stage, round, settings,"
            " created_at, updated_at) VALUES (1, 'kit', 'Kit', 'kit21', 'tiny', 'seeded', 0, '{}',"
            " '2025-01-01 00:00:00', '2025-01-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO images (id, sha256, character_id, width, height, size_bytes, blob_path, origin,"
            " parent_id, provenance, created_at) VALUES (1, :sha, 1, 64, 96, 1234, :rel, 'seed', NULL,"
            " :prov, '2025-01-01 00:00:00')"),
            {"sha": "ab" * 32, "rel": f"ab/{'ab' * 32}.png", "prov": json.dumps({"note": "old"})})
        conn.execute(text(
            "INSERT INTO dataset_versions (id, character_id, number, kind, parent_id, manifest_hash,"
            " caption_policy, item_count, note, created_at) VALUES (1, 1, 1, 'style', NULL, :m,"
            " 'style', 1, 'seed', '2025-01-01 00:00:00')"), {"m": "0" * 64})
        conn.execute(text(
            "INSERT INTO dataset_items (character_id, image_id, caption, repeats, added_in, removed_in)"
            " VALUES (1, 1, 'kit21, 1girl', 2, 1, NULL)"))
        conn.execute(text(
            "INSERT INTO loras (id, character_id, name, kind, round, file_path, sha256, hyperparams,"
            " status, created_at) VALUES (1, 1, 'kit-style-r1', 'style', 1, 'loras/kit.safetensors',"
            " :sha, '{\"rank\": 4}', 'ready', '2025-01-01 00:00:00')"), {"sha": "cd" * 32})
        conn.execute(text(
            "INSERT INTO jobs (kind, character_id, payload, status, attempts, max_attempts, created_at)"
            " VALUES ('train', 1, '{\"kind\": \"style\"}', 'done', 1, 3, '2025-01-01 00:00:00')"))


def test_old_registry_with_data_is_upgraded_on_open(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "r.sqlite3")
    engine = make_engine(url)
    upgrade(engine, "0001")
    _fill_at_0001(engine)
    engine.dispose()

    with open_registry(url) as reg, reg.session() as s:  # opening applies the pending migrations
        assert reg.current_revision() == head_revision()
        c = s.scalars(select(Character)).one()
        assert (c.slug, c.trigger, c.settings) == ("kit", "kit21", {})
        img = s.scalars(select(Image)).one()
        assert (img.sha256, img.provenance, img.file_name) == ("ab" * 32, {"note": "old"}, None)
        item = s.scalars(select(DatasetItem)).one()
        assert (item.caption, item.repeats, item.added_in, item.removed_in) == ("kit21, 1girl", 2, 1, None)
        assert s.scalars(select(DatasetVersion)).one().note == "seed"
        lora = s.scalars(select(Lora)).one()
        assert (lora.hyperparams, lora.metrics) == ({"rank": 4}, {})  # new column, filled by default
        job = s.scalars(select(Job)).one()
        assert (job.payload, job.result) == ({"kind": "style"}, {})
        s.add(Lora(character_id=1, name="kit-style-r2", kind="style", file_path="x", sha256="ef" * 32,
                   parent_lora_id=lora.id, metrics={"loss": 0.1}))
    with open_registry(url) as reg, reg.session() as s:
        assert [lo.metrics for lo in s.scalars(select(Lora).order_by(Lora.id))] == [{}, {"loss": 0.1}]


def test_db_current_and_upgrade_commands(workspace, cli_run) -> None:
    engine = make_engine(workspace.database_url)
    downgrade(engine, "0001")
    _fill_at_0001(engine)
    engine.dispose()
    r = cli_run("db", "current")
    assert r.code == 0 and f"current: 0001  head: {head_revision()}" in r.out and "db upgrade" in r.out
    r = cli_run("db", "upgrade")
    assert r.code == 0 and r.out.strip() == f"upgraded 0001 → {head_revision()}"
    assert cli_run("db", "upgrade").out.strip() == f"already at {head_revision()}"
    assert cli_run("character", "list", "--json").out.count('"slug": "kit"') == 1
