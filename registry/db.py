"""Opening a registry: engine, SQLite pragmas, automatic migrations, transactional sessions."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from registry.migrate import current_revision, head_revision, upgrade

SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def resolve_driver(url: str) -> URL:
    """`postgresql://` means psycopg 3 to SQLAlchemy 2.1; fall back to psycopg2 when only it is installed."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is not None:
            return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine with the pragmas lorastrap relies on: WAL, foreign keys, a generous busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # pysqlite's own transaction handling delays BEGIN; issue it ourselves so that a
            # write transaction takes the lock up front (no "database is locked" mid-transaction).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            # Read-only sessions (session(write=False)) take no write lock, so listing never waits.
            write = conn.get_execution_options().get("lorastrap_write", True)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(resolve_driver(url), pool_pre_ping=True)


class Registry:
    """A migrated database. `with reg.session() as s:` is one transaction (commit or rollback)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(lorastrap_write=False), expire_on_commit=False
        )

    @contextlib.contextmanager
    def session(self, write: bool = True) -> Iterator[Session]:
        with (self._sessions if write else self._read_sessions)() as s:
            with s.begin():
                yield s

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def current_revision(self) -> str | None:
        return current_revision(self.engine)

    def head_revision(self) -> str:
        return head_revision()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_registry(url: str, *, migrate: bool = True) -> Registry:
    return Registry(url, migrate=migrate)
