"""`lorastrap jobs …` as library functions over a workspace's registry."""

from __future__ import annotations

from collections import deque
from typing import Any

from lorastrap import jobs
from lorastrap.errors import UserError
from lorastrap.job_kinds import known_kinds
from lorastrap.workspace import Workspace


def jobs_list(ws: Workspace, *, status: str | None = None, character: str | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    with ws.open_registry() as reg:
        return jobs.list_jobs(reg, status=status, character=character, limit=limit)


def jobs_show(ws: Workspace, job_id: int, *, log_lines: int = 20) -> dict[str, Any]:
    """The job row plus the last lines of its log (when the log is on this machine)."""
    with ws.open_registry() as reg:
        info = jobs.get_job(reg, job_id)
    info["log_tail"] = []
    if info["log_path"]:
        path = ws.abs(info["log_path"])
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as fh:
                info["log_tail"] = [line.rstrip("\n") for line in deque(fh, maxlen=log_lines)]
    return info


def jobs_cancel(ws: Workspace, job_id: int) -> dict[str, Any]:
    with ws.open_registry() as reg:
        return jobs.cancel(reg, job_id)


def jobs_retry(ws: Workspace, job_id: int) -> dict[str, Any]:
    with ws.open_registry() as reg:
        return jobs.retry(reg, job_id)


def jobs_add(ws: Workspace, kind: str, *, character: str | None = None, dataset_version: int | None = None,
             payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Queue a job by hand: `train` for a character's dataset version (default: the latest), or any
    registered kind with a JSON payload (e.g. `sleep` to test a worker set-up)."""
    if kind not in known_kinds():
        raise UserError(f"unknown job kind {kind!r}; known: {', '.join(known_kinds())}")
    with ws.open_registry() as reg:
        if kind == jobs.TRAIN_KIND:
            from lorastrap.autotrain import enqueue_training
            from lorastrap.characters import get_character
            from lorastrap.datasets import latest_version

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
        return jobs.enqueue(reg, kind, payload or {}, max_attempts=ws.config.watch.max_attempts)
