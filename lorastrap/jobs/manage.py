"""`lorastrap jobs …` as library functions over a workspace's registry, and queueing the two
checked kinds (train a dataset version, run the next bootstrap step)."""

from __future__ import annotations

from collections import deque
from typing import Any

from lorastrap.dataset.versions import get_version, latest_version
from lorastrap.jobs import queue as jobs
from lorastrap.jobs.kinds import known_kinds
from lorastrap.kernel.errors import Conflict, PreconditionFailed, UserError
from lorastrap.method.stage import compute_status
from lorastrap.queries import get_character
from lorastrap.workspace import Workspace
from registry.db import Registry


def jobs_list(ws: Workspace, *, status: str | None = None, character: str | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    with ws.registry() as reg:
        return jobs.list_jobs(reg, status=status, character=character, limit=limit)


def jobs_show(ws: Workspace, job_id: int, *, log_lines: int = 20) -> dict[str, Any]:
    """The job row plus the last lines of its log (when the log is on this machine)."""
    with ws.registry() as reg:
        info = jobs.get_job(reg, job_id)
    info["log_tail"] = []
    if info["log_path"]:
        path = ws.abs(info["log_path"])
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as fh:
                info["log_tail"] = [line.rstrip("\n") for line in deque(fh, maxlen=log_lines)]
    return info


def jobs_cancel(ws: Workspace, job_id: int) -> dict[str, Any]:
    with ws.registry() as reg:
        return jobs.cancel(reg, job_id)


def jobs_retry(ws: Workspace, job_id: int) -> dict[str, Any]:
    with ws.registry() as reg:
        return jobs.retry(reg, job_id)


def jobs_add(ws: Workspace, kind: str, *, character: str | None = None, dataset_version: int | None = None,
             payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Queue a job by hand: `train` for a character's dataset version (default: the latest),
    `bootstrap` for a character's next step, or any registered kind with a JSON payload (e.g. `sleep` to test a worker set-up)."""
    if kind not in known_kinds():
        raise UserError(f"unknown job kind {kind!r}; known: {', '.join(known_kinds())}")
    with ws.registry() as reg:
        if kind == jobs.TRAIN_KIND:
            if not character:
                raise UserError("a train job needs --character NAME")
            with reg.session(write=False) as s:
                c = get_character(s, character)
                latest = latest_version(s, c)
                slug = c.slug
                if dataset_version is None:
                    if latest is None:
                        raise UserError(f"{slug} has no dataset version yet; add images to curated/ first")
                    dataset_version = latest.number
            return enqueue_training(ws, reg, slug, dataset_version)
        if kind == BOOTSTRAP_KIND:
            if not character:
                raise UserError("a bootstrap job needs --character NAME")
            return enqueue_bootstrap(ws, reg, character, (payload or {}).get("auto_curate"))
        return jobs.enqueue(reg, kind, payload or {}, max_attempts=ws.config.watch.max_attempts)


BOOTSTRAP_KIND = "bootstrap"


def enqueue_bootstrap(ws: Workspace, reg: Any, name: str, auto_curate: int | None = None) -> dict[str, Any]:
    """Queue the next bootstrap step of a character, checked first: refused while one is queued
    or running for it, when the method is finished, or when its precondition is not met (the
    reason says what is missing, as `lorastrap bootstrap` would)."""

    if auto_curate is not None and not 1 <= int(auto_curate) <= 1000:
        raise UserError(f"auto-curate must be between 1 and 1000 (got {auto_curate})")
    with reg.session(write=False) as s:
        c = get_character(s, name)
        status = compute_status(ws, s, c)
        slug, character_id = c.slug, c.id
    active = [j for j in jobs.list_jobs(reg, character=slug, limit=20)
              if j["kind"] == BOOTSTRAP_KIND and j["status"] in ("queued", "running")]
    if active:
        raise Conflict(f"job {active[0]['id']} already runs the next step of {slug} ({active[0]['status']})")
    if status.stage == "character_trained":
        raise PreconditionFailed(f"{slug} is finished: the character LoRA is trained")
    missing = (status.threshold or 0) - status.total
    if not status.ready and not (auto_curate and status.stage == "candidates" and auto_curate >= missing):
        raise PreconditionFailed(f"cannot {status.next_step} yet: {status.reason}")
    payload: dict[str, Any] = {"slug": slug}
    if auto_curate:
        payload["auto_curate"] = int(auto_curate)
    return jobs.enqueue(reg, BOOTSTRAP_KIND, payload, character_id=character_id,
                        max_attempts=ws.config.watch.max_attempts)


def enqueue_training(ws: Workspace, reg: Registry, slug: str, dataset_version: int) -> dict[str, Any]:
    """Queue training on a dataset version; a queued, unstarted job of the character is superseded.
    The job's kind is the version's (its captions were written for that kind)."""
    with reg.session(write=False) as s:
        character = get_character(s, slug)
        version = get_version(s, character, dataset_version)
        character_id, kind = character.id, version.kind
    payload = {"slug": slug, "kind": kind, "dataset_version": dataset_version}
    return jobs.enqueue(reg, jobs.TRAIN_KIND, payload, character_id=character_id,
                        max_attempts=ws.config.watch.max_attempts, supersede=True)
