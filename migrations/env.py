"""Alembic environment: the engine and the models' metadata come from registry.migrate (no
alembic.ini needed; the migrations import nothing of the registry, so the arrow points one way)."""

from __future__ import annotations

from alembic import context

config = context.config
target_metadata = config.attributes.get("target_metadata")


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        raise RuntimeError("migrations are run through registry.migrate, which passes an engine")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
