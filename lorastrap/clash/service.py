"""Registry side of the clash tools: external style LoRAs (`style add|list`), and finding the LoRAs
a clash run needs (the character's LoRA, the styles), each with a one-line error + next action."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.characters import get_character
from lorastrap.clash.fix import kohya_keys, kohya_tensors
from lorastrap.clash.lora_file import (
    ARCH_LABELS, LoraFile, LoraFormatError, kohya_metadata, read_lora,
)
from lorastrap.errors import Conflict, NotFound, PreconditionFailed, UserError
from lorastrap.models.hashing import addnet_hash, sha256_file
from lorastrap.workspace import Workspace
from registry.models import Character, Lora

STYLE_KINDS = ("external", "style", "compat")


@dataclass
class StyleInfo:
    id: int
    name: str
    path: str
    sha256: str
    arch: str | None
    key_format: str
    modules: int
    rank: int
    trigger: str
    checked_against: str | None
    warnings: list[str]


def _trigger_of(lora: LoraFile) -> str:
    return lora.metadata.get("modelspec.trigger_phrase", "").strip()


def base_arch(ws: Workspace, spec: str | None) -> str:
    """Architecture of a base model spec (the character's or the workspace default)."""
    from lorastrap.models.base import resolve_base_model

    return resolve_base_model(spec or ws.config.workspace.base_model, ws.root).arch


def add_style(ws: Workspace, path: Path, name: str, *, trigger: str | None = None,
              character: str | None = None, replace: bool = False) -> StyleInfo:
    """Validate a style LoRA file and register it (kind `external`)."""
    path = Path(path).expanduser().resolve()
    name = name.strip()
    if not name or any(ch in name for ch in ":<>,/\\. "):
        raise UserError(f"style name {name!r} is not usable in prompts; use letters, digits, - or _ (e.g. --name watercolor)")
    lora = read_lora(path)
    if not lora.modules:
        raise LoraFormatError(f"{path.name} holds no LoRA modules; pass a LoRA file")
    with ws.open_registry() as reg, reg.session() as s:
        base_spec = get_character(s, character).base_model if character else None
        target = base_arch(ws, base_spec)
        against = f"{'character ' + character if character else 'workspace'} base model ({ARCH_LABELS[target]})"
        if lora.arch and lora.arch != target:
            raise LoraFormatError(
                f"{path.name} is an {ARCH_LABELS[lora.arch]} LoRA but the {against.rsplit(' (', 1)[0]} is "
                f"{ARCH_LABELS[target]}; use a style LoRA trained for {ARCH_LABELS[target]}")
        existing = s.scalars(select(Lora).where(Lora.kind == "external", Lora.name == name)).first()
        if existing and not replace:
            raise Conflict(f"a style named {name!r} is already registered (#{existing.id}); pass --replace or another --name")
        row = existing or Lora(kind="external", name=name, character_id=None)
        ranks = sorted({m.rank for m in lora.modules.values()})
        row.file_path = str(path)
        row.sha256 = sha256_file(path)
        row.short_hash = addnet_hash(path)[:12]
        row.arch = lora.arch or target
        row.hyperparams = {"trigger": trigger if trigger is not None else _trigger_of(lora),
                           "key_format": lora.key_format, "modules": len(lora.modules), "rank": ranks[-1],
                           "ss_network_module": lora.metadata.get("ss_network_module", "")}
        row.status = "ready"
        if existing is None:
            s.add(row)
        s.flush()
        return StyleInfo(row.id, name, row.file_path, row.sha256, row.arch, lora.key_format, len(lora.modules),
                         ranks[-1], row.hyperparams["trigger"], against, list(lora.warnings))


def list_styles(ws: Workspace) -> list[dict]:
    with ws.open_registry() as reg, reg.session() as s:
        rows = s.scalars(select(Lora).where(Lora.kind.in_(("external", "compat"))).order_by(Lora.name))
        return [{"id": r.id, "name": r.name, "kind": r.kind, "arch": r.arch, "path": r.file_path,
                 "sha256": r.sha256[:12], "trigger": (r.hyperparams or {}).get("trigger", ""),
                 "parent": r.parent_lora_id} for r in rows]


def resolve_style(s: Session, name: str) -> Lora:
    """A registered style by name (external, compat, or a character's style LoRA), or any LoRA by `#id`."""
    if name.startswith("#") and name[1:].isdigit():
        row = s.get(Lora, int(name[1:]))
        if row is not None:
            return row
    rows = s.scalars(select(Lora).where(Lora.name == name, Lora.kind.in_(STYLE_KINDS)).order_by(Lora.id.desc())).all()
    preferred = [r for r in rows if r.kind in ("external", "compat")] or rows
    if not preferred:
        raise NotFound(f"no style LoRA named {name!r}; register it with `lorastrap style add PATH --name {name}`")
    return preferred[0]


def character_lora(s: Session, character: Character, lora_id: int | None = None) -> Lora:
    if lora_id is not None:
        row = s.get(Lora, lora_id)
        if row is None or row.character_id != character.id:
            raise NotFound(f"LoRA #{lora_id} is not a LoRA of {character.slug}; see `lorastrap character show {character.slug}`")
        return row
    row = s.scalars(select(Lora).where(Lora.character_id == character.id, Lora.kind == "character",
                                       Lora.status == "ready").order_by(Lora.id.desc())).first()
    if row is None:
        raise PreconditionFailed(
            f"{character.slug} has no character LoRA yet; run `lorastrap train {character.slug} --kind character` "
            "(or pass --lora ID to test one of its style LoRAs)")
    return row


def load_registered(ws: Workspace, row: Lora) -> LoraFile:
    """Read a registered LoRA's file, refusing one that is gone or changed since registration."""
    path = ws.abs(row.file_path)
    if not path.is_file():
        raise PreconditionFailed(f"the file of LoRA {row.name!r} is gone ({path}); put it back or re-register it "
                                 f"with `lorastrap style add PATH --name {row.name} --replace`")
    if row.kind == "external" and sha256_file(path) != row.sha256:
        raise PreconditionFailed(f"{path} changed since it was registered as {row.name!r}; check it and run "
                                 f"`lorastrap style add {path} --name {row.name} --replace`")
    return read_lora(path)


def loadable_path(ws: Workspace, path: Path, sha256: str, lora: LoraFile) -> Path:
    """The file as the generator loads it: the original when it already has diffusers-style kohya keys,
    else a normalised kohya copy in the cache (diffusers/peft keys, SDXL original-layout names)."""
    if lora.key_format == "kohya" and set(lora.source_keys) == kohya_keys(lora, native=False):
        return path
    from lorastrap.training.kohya_format import write_kohya_file

    cached = ws.cache_dir / "clash" / f"{sha256[:16]}.safetensors"
    if not cached.is_file():
        write_kohya_file(kohya_tensors(lora, torch.float32, native=False), cached, kohya_metadata(lora))
    return cached
