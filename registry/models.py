"""The registry's tables as a typed SQLAlchemy 2.x ORM.

The schema is owned by alembic (migrations/); `tests/test_migrations.py` checks that these models
and the migrations agree. docs/registry.md describes every table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class BaseModel(Base):
    """A base checkpoint (diffusers dir, hub id or single file), identified by its hash."""

    __tablename__ = "base_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    spec: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))  # diffusers | hub | single_file
    arch: Mapped[str] = mapped_column(String(16))  # sd15 | sdxl
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Character(Base):
    __tablename__ = "characters"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(64), unique=True)
    base_model: Mapped[str | None] = mapped_column(String(1024))
    stage: Mapped[str] = mapped_column(String(32), default="seeded")
    round: Mapped[int] = mapped_column(Integer, default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    tags: Mapped[list[CharacterTag]] = relationship(
        back_populates="character", cascade="all, delete-orphan", order_by="CharacterTag.position"
    )


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200), unique=True)


class CharacterTag(Base):
    __tablename__ = "character_tags"
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)  # identity|variable|negative
    position: Mapped[int] = mapped_column(Integer, default=0)

    character: Mapped[Character] = relationship(back_populates="tags")
    tag: Mapped[Tag] = relationship(lazy="joined")


class Image(Base):
    """An image in the content-addressed blob store; never edited in place."""

    __tablename__ = "images"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    character_id: Mapped[int | None] = mapped_column(
        ForeignKey("characters.id", ondelete="SET NULL"), index=True
    )
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    blob_path: Mapped[str] = mapped_column(String(512))
    origin: Mapped[str] = mapped_column(String(16))  # seed|crop|generated|edited|imported
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    file_name: Mapped[str | None] = mapped_column(String(512))
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DatasetVersion(Base):
    """An immutable dataset version. Versions of one character form a line (parent = previous)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("character_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # style | character
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    manifest_hash: Mapped[str] = mapped_column(String(64))
    caption_policy: Mapped[str] = mapped_column(String(32))
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DatasetItem(Base):
    """One image+caption, valid from version `added_in` until before `removed_in` (interval rows).

    A new version that changes k items writes O(k) rows, whatever the dataset's size.
    """

    __tablename__ = "dataset_items"
    __table_args__ = (
        Index("ix_dataset_items_live", "character_id", "removed_in", "added_in"),
        # apply_changes finds the live rows of the changed images: O(changed), not O(dataset)
        Index("ix_dataset_items_image", "character_id", "image_id", "removed_in"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    caption: Mapped[str] = mapped_column(Text)
    repeats: Mapped[int] = mapped_column(Integer, default=1)
    added_in: Mapped[int] = mapped_column(Integer)
    removed_in: Mapped[int | None] = mapped_column(Integer)


class Lora(Base):
    __tablename__ = "loras"
    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int | None] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # style | character | external | compat
    round: Mapped[int | None] = mapped_column(Integer)
    file_path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    short_hash: Mapped[str | None] = mapped_column(String(16))
    arch: Mapped[str | None] = mapped_column(String(16))
    base_model: Mapped[str | None] = mapped_column(String(1024))
    base_model_sha256: Mapped[str | None] = mapped_column(String(64))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    parent_lora_id: Mapped[int | None] = mapped_column(ForeignKey("loras.id"))
    hyperparams: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    character_id: Mapped[int | None] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(String(1024))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ClashRun(Base):
    __tablename__ = "clash_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    character_lora_id: Mapped[int] = mapped_column(ForeignKey("loras.id"))
    out_dir: Mapped[str] = mapped_column(String(1024))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ClashCell(Base):
    __tablename__ = "clash_cells"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("clash_runs.id", ondelete="CASCADE"), index=True)
    style_lora_id: Mapped[int | None] = mapped_column(ForeignKey("loras.id"))
    variant: Mapped[str] = mapped_column(String(64))  # character-only | style-only | grid | preset:… | fix
    character_weight: Mapped[float] = mapped_column(Float)
    style_weight: Mapped[float] = mapped_column(Float)
    view: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    image_path: Mapped[str | None] = mapped_column(String(1024))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Export(Base):
    __tablename__ = "exports"
    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    engine: Mapped[str] = mapped_column(String(32))
    out_dir: Mapped[str] = mapped_column(String(1024))
    lora_id: Mapped[int | None] = mapped_column(ForeignKey("loras.id"))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    files: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
