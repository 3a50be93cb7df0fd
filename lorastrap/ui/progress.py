"""A job as the page shows it: phase, step/total, loss, ETA, and the pictures it made so far
(training sample grids under the run folder, candidates of the round it generates)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lorastrap.workspace import Workspace

ACTIVE = ("queued", "running")
STEP_KINDS = ("bootstrap", "train")


def _since(iso: str | None) -> float | None:
    if not iso:
        return None
    return dt.datetime.fromisoformat(iso).replace(tzinfo=dt.timezone.utc).timestamp()


def job_view(ws: Workspace, job: dict[str, Any]) -> dict[str, Any]:
    p = dict((job.get("result") or {}).get("progress") or {}) if job["status"] == "running" else {}
    result = job.get("result") or {}
    total, done = p.get("total"), p.get("done")
    view: dict[str, Any] = {
        "id": job["id"], "kind": job["kind"], "status": job["status"], "character": job["character"],
        "phase": p.get("phase") or ("queued" if job["status"] == "queued" else job["status"]),
        "done": done, "total": total, "note": p.get("note") or "",
        "percent": round(100 * done / total, 1) if total and done is not None else None,
        "loss": p.get("loss"), "eta_s": p.get("eta_s"), "error": job.get("error"),
        "messages": list(result.get("messages") or []), "worker": job.get("worker"),
        "samples": [], "candidates": 0, "finished": job["status"] not in ACTIVE,
    }
    started = _since(job.get("started_at"))
    slug = job.get("character")
    if started is not None and slug:
        grids = [g for g in ws.runs_dir.glob(f"{slug}-*/samples/step-*.png") if g.stat().st_mtime >= started - 1]
        view["samples"] = [ws.rel(g) for g in sorted(grids, key=lambda g: g.stat().st_mtime)][-6:]
        made = [c for c in ws.candidates_dir(slug).glob("r*/*.png")
                if c.name != "contact-sheet.png" and c.stat().st_mtime >= started - 1]
        view["candidates"] = len(made)
    return view


def active_job(ws: Workspace, slug: str) -> dict[str, Any] | None:
    """The character's running or queued step job, else its newest finished one."""
    from lorastrap.jobs.manage import jobs_list

    rows = [j for j in jobs_list(ws, character=slug, limit=10) if j["kind"] in STEP_KINDS]
    live = [j for j in rows if j["status"] in ACTIVE]
    return (live or rows or [None])[0]
