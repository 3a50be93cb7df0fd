"""Registry side of the clash tools: external style LoRAs (`style add|list`), and finding the LoRAs
a clash run needs (the character's LoRA, the styles), each with a one-line error + next action."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.kernel.errors import Conflict, NotFound, PreconditionFailed, UserError
from lorastrap.models.hashing import addnet_hash, sha256_file
from lorastrap.models.lora import ARCH_LABELS, LoraFile, read_lora
from lorastrap.models.lora.triggers import TriggerProposal, propose_trigger
from lorastrap.models.lora.validate import BaseModules, base_modules, check_fits
from lorastrap.queries import get_character, newest_lora
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
    trigger_source: str = ""  # --trigger | modelspec.trigger_phrase | ss_tag_frequency | "" (none)
    proposal: TriggerProposal | None = None


def base_of(ws: Workspace, spec: str | None) -> BaseModules:
    """The module table of a base model spec (the character's or the workspace default)."""
    from lorastrap.models.base import resolve_base_model

    return base_modules(resolve_base_model(spec or ws.config.workspace.base_model, ws.root))


def style_trigger(lora: LoraFile, given: str | None) -> tuple[str, str, TriggerProposal | None]:
    """(trigger, where it came from, proposal): --trigger wins, then the file's modelspec trigger,
    then the tags in (nearly) every training caption."""
    if given is not None:
        return given.strip(), "--trigger", None
    stated = lora.metadata.get("modelspec.trigger_phrase", "").strip()
    if stated:
        return stated, "modelspec.trigger_phrase", None
    proposal = propose_trigger(lora.metadata)
    return (proposal.phrase, "ss_tag_frequency", proposal) if proposal else ("", "", None)


def add_style(ws: Workspace, path: Path, name: str, *, trigger: str | None = None,
              character: str | None = None, replace: bool = False) -> StyleInfo:
    """Validate a style LoRA file against the base model and register it (kind `external`).

    Everything is checked before anything is written: a refused file leaves the workspace as it was."""
    path = Path(path).expanduser().resolve()
    name = name.strip()
    if not name or any(ch in name for ch in ":<>,/\\. "):
        raise UserError(f"style name {name!r} is not usable in prompts; use letters, digits, - or _ (e.g. --name watercolor)")
    lora = read_lora(path)  # format and values first: refused before any base model is looked at
    with ws.session() as s:
        base_spec = get_character(s, character).base_model if character else None
        base = base_of(ws, base_spec)
        if lora.unet_names == "sgm":  # original block numbers depend on the base model's UNet layout
            lora = read_lora(path, base.blocks)
        against = f"{'character ' + character if character else 'workspace'} base model ({ARCH_LABELS[base.arch]})"
        check_fits(lora, base, path.name)
        existing = s.scalars(select(Lora).where(Lora.kind == "external", Lora.name == name)).first()
        if existing and not replace:
            raise Conflict(f"a style named {name!r} is already registered (#{existing.id}); pass --replace or another --name")
        words, source, proposal = style_trigger(lora, trigger)
        row = existing or Lora(kind="external", name=name, character_id=None)
        ranks = sorted({m.rank for m in lora.modules.values()})
        row.file_path = str(path)
        row.sha256 = sha256_file(path)
        row.short_hash = addnet_hash(path)[:12]
        row.arch = lora.arch or base.arch
        row.hyperparams = {"trigger": words, "trigger_source": source, "key_format": lora.key_format,
                           "modules": len(lora.modules), "rank": ranks[-1],
                           "ss_network_module": lora.metadata.get("ss_network_module", "")}
        row.status = "ready"
        if existing is None:
            s.add(row)
        s.flush()
        return StyleInfo(row.id, name, row.file_path, row.sha256, row.arch, lora.key_format, len(lora.modules),
                         ranks[-1], words, against, list(lora.warnings), source, proposal)


def list_styles(ws: Workspace) -> list[dict]:
    with ws.session() as s:
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
    row = newest_lora(s, character, ("character",))
    if row is None:
        raise PreconditionFailed(
            f"{character.slug} has no character LoRA yet; run `lorastrap train {character.slug} --kind character` "
            "(or pass --lora ID to test one of its style LoRAs)")
    return row


def load_registered(ws: Workspace, row: Lora, base: BaseModules) -> LoraFile:
    """Read a registered LoRA's file and check it against `base`, refusing one that is gone, changed
    since registration, or made for another base model."""
    path = ws.abs(row.file_path)
    if not path.is_file():
        raise PreconditionFailed(f"the file of LoRA {row.name!r} is gone ({path}); put it back or re-register it "
                                 f"with `lorastrap style add PATH --name {row.name} --replace`")
    if row.kind == "external" and sha256_file(path) != row.sha256:
        raise PreconditionFailed(f"{path} changed since it was registered as {row.name!r}; check it and run "
                                 f"`lorastrap style add {path} --name {row.name} --replace`")
    lora = read_lora(path, base.blocks)
    check_fits(lora, base, f"LoRA {row.name!r} ({path.name})")
    return lora
