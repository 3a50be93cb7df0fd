"""A candidate's curation state — open, kept (copied into curated/), rejected (set aside in
`candidates/rN/.rejected/`) — and moving it between them: the web UI's K, X and U keys.

Keeping and rejecting are `curate --keep/--reject` (the same function, without the snapshot);
going back undoes only what they did: a curated file is removed only while it is still
byte-identical to its candidate (an image the person edited after keeping it stays), and a
rejected candidate is moved back from `.rejected/` only when nothing took its name meanwhile.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from lorastrap.kernel.errors import Conflict, NotFound, UserError
from lorastrap.workspace import Workspace

STATES = ("open", "kept", "rejected")


def plain_name(name: str) -> str:
    """A bare file name from a request: no folders, no `..`, no hidden files."""
    if not name or name != Path(name).name or name.startswith(".") or "\\" in name or "\0" in name:
        raise UserError(f"{name!r} is not a plain file name")
    return name


def candidate_path(ws: Workspace, slug: str, round_no: int, name: str) -> Path:
    """A candidate of round `round_no` by name, in the round's folder or set aside in .rejected/."""
    folder = ws.candidates_dir(slug, round_no)
    for path in (folder / plain_name(name), folder / ".rejected" / name):
        if path.is_file():
            return path
    raise NotFound(f"no candidate {name} in round {round_no} of {slug}")


def unkeep(ws: Workspace, slug: str, round_no: int, name: str) -> Path:
    """Remove `curated/<name>` again, if it is still the candidate's exact copy."""
    source = candidate_path(ws, slug, round_no, name)
    kept = ws.curated_dir(slug) / name
    if not kept.is_file():
        raise NotFound(f"{name} is not in {ws.curated_dir(slug)}")
    if not filecmp.cmp(source, kept, shallow=False):
        raise Conflict(f"{kept} was changed after it was kept; remove it by hand if you mean to")
    kept.unlink()
    return kept


def unreject(ws: Workspace, slug: str, round_no: int, name: str) -> Path:
    """Move a rejected candidate back from `candidates/rN/.rejected/`."""
    folder = ws.candidates_dir(slug, round_no)
    aside = folder / ".rejected" / plain_name(name)
    if not aside.is_file():
        raise NotFound(f"{name} was not rejected in round {round_no} of {slug}")
    target = folder / name
    if target.exists():
        raise Conflict(f"{target} exists again; remove one of the two by hand")
    shutil.move(str(aside), target)
    return target


def candidate_state(ws: Workspace, slug: str, round_no: int, name: str) -> str:
    path = candidate_path(ws, slug, round_no, name)
    if path.parent.name == ".rejected":
        return "rejected"
    return "kept" if (ws.curated_dir(slug) / name).is_file() else "open"


def set_candidate_state(ws: Workspace, slug: str, round_no: int, name: str, state: str) -> str:
    """Move a candidate to `state`; returns the state it had (what an undo goes back to)."""
    from lorastrap.method.curation import curate

    if state not in STATES:
        raise UserError(f"unknown candidate state {state!r}; use one of {', '.join(STATES)}")
    before = candidate_state(ws, slug, round_no, name)
    if before == state:
        return before
    if before == "kept":
        unkeep(ws, slug, round_no, name)
    elif before == "rejected":
        unreject(ws, slug, round_no, name)
    path = candidate_path(ws, slug, round_no, name)
    if state == "kept":
        curate(ws, slug, keep=[path], sync=False)
    elif state == "rejected":
        curate(ws, slug, reject=[path], sync=False)
    return before
