"""The persisted job queue: rows of the `jobs` table and the state changes a worker makes.

Every state change is one short transaction whose UPDATE is guarded by the expected status (and,
for a worker's own job, its worker name), so two processes never both win a change. Claiming is
atomic: `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, a `BEGIN IMMEDIATE` write transaction on
SQLite (the registry's default), and the guarded UPDATE on both.

States: queued → running → done | failed | cancelled; running → queued again when a worker stops
cleanly (resume) or its heartbeat goes stale (crash) until `max_attempts` is spent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from lorastrap.kernel.errors import Conflict, NotFound, UserError
from registry.db import Registry
from registry.models import Character, Job, utcnow

STATUSES = ("queued", "running", "done", "failed", "cancelled")
TRAIN_KIND = "train"


def job_dict(job: Job, slug: str | None = None) -> dict[str, Any]:
    """A plain snapshot of a row, safe to use after its session is closed."""

    def iso(t: dt.datetime | None) -> str | None:
        return t.isoformat(timespec="seconds") if t else None

    return {
        "id": job.id, "kind": job.kind, "character": slug, "character_id": job.character_id,
        "payload": dict(job.payload or {}), "status": job.status, "attempts": job.attempts,
        "max_attempts": job.max_attempts, "worker": job.worker, "heartbeat_at": iso(job.heartbeat_at),
        "error": job.error, "log_path": job.log_path, "result": dict(job.result or {}),
        "created_at": iso(job.created_at), "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def _slug_of(s: Session, character_id: int | None) -> str | None:
    return None if character_id is None else s.get(Character, character_id).slug  # type: ignore[union-attr]


def _locking(reg: Registry, query):  # type: ignore[no-untyped-def]
    # PostgreSQL: lock the candidate rows and skip those another worker holds. SQLite has no row
    # locks; its BEGIN IMMEDIATE transaction already serialises writers.
    return query.with_for_update(skip_locked=True) if reg.dialect == "postgresql" else query


def _guarded_update(s: Session, job_id: int, expect: Sequence[str], held_by: str | None = None,
                    **values: Any) -> bool:
    """UPDATE the row only if it is still in an expected status (and held by worker `held_by`)."""
    cond = [Job.id == job_id, Job.status.in_(list(expect))]
    if held_by is not None:
        cond.append(Job.worker == held_by)
    return s.execute(update(Job).where(*cond).values(**values)).rowcount == 1


# -- producers -------------------------------------------------------------------------------------
def enqueue(reg: Registry, kind: str, payload: dict[str, Any] | None = None, *,
            character_id: int | None = None, max_attempts: int = 3, supersede: bool = False) -> dict[str, Any]:
    """Add a queued job. With `supersede`, queued (not started) jobs of the same kind for the same
    character are cancelled in the same transaction: only the newest change is worth training."""
    if max_attempts < 1:
        raise UserError(f"max_attempts must be at least 1 (got {max_attempts}); fix [watch] max_attempts")
    with reg.session() as s:
        job = Job(kind=kind, character_id=character_id, payload=dict(payload or {}), status="queued",
                  attempts=0, max_attempts=max_attempts, result={})
        s.add(job)
        s.flush()
        superseded: list[int] = []
        if supersede and character_id is not None:
            old = s.scalars(select(Job.id).where(
                Job.kind == kind, Job.character_id == character_id, Job.status == "queued", Job.id != job.id))
            superseded = list(old)
            if superseded:
                s.execute(update(Job).where(Job.id.in_(superseded), Job.status == "queued").values(
                    status="cancelled", finished_at=utcnow(), error=f"superseded by job {job.id}"))
        info = job_dict(job, _slug_of(s, character_id))
        info["superseded"] = superseded
        return info


# -- worker side -----------------------------------------------------------------------------------
def claim(reg: Registry, worker: str, kinds: Iterable[str] | None = None) -> dict[str, Any] | None:
    """Take the oldest queued job (of the given kinds) for `worker`; None when there is none."""
    kinds = list(kinds) if kinds is not None else None
    with reg.session() as s:
        for _ in range(8):  # a lost race on the guarded UPDATE just moves on to the next row
            q = select(Job).where(Job.status == "queued")
            if kinds is not None:
                q = q.where(Job.kind.in_(kinds))
            job = s.scalars(_locking(reg, q.order_by(Job.id).limit(1))).first()
            if job is None:
                return None
            now = utcnow()
            if _guarded_update(s, job.id, ["queued"], status="running", worker=worker,
                               attempts=job.attempts + 1, heartbeat_at=now, started_at=now,
                               finished_at=None, error=None):
                s.refresh(job)
                return job_dict(job, _slug_of(s, job.character_id))
            s.expire(job)
    return None


def set_log_path(reg: Registry, job_id: int, log_path: str) -> None:
    with reg.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(log_path=log_path))


def heartbeat(reg: Registry, job_id: int, worker: str, progress: dict[str, Any] | None = None) -> bool:
    """Refresh the heartbeat. False: the job is no longer this worker's (cancelled or re-queued)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["result"] = {"progress": progress}
    with reg.session() as s:
        return _guarded_update(s, job_id, ["running"], worker, **values)


def finish(reg: Registry, job_id: int, worker: str, result: dict[str, Any]) -> bool:
    with reg.session() as s:
        return _guarded_update(s, job_id, ["running"], worker, status="done", result=result,
                               finished_at=utcnow(), heartbeat_at=utcnow(), error=None)


def fail(reg: Registry, job_id: int, worker: str, error: str) -> bool:
    with reg.session() as s:
        return _guarded_update(s, job_id, ["running"], worker, status="failed", error=error,
                               finished_at=utcnow())


def release(reg: Registry, job_id: int, worker: str, reason: str) -> bool:
    """A clean stop (signal): back to the queue, to resume from its checkpoint. The interrupted
    run does not count as an attempt; only crashes and errors spend attempts."""
    with reg.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            return False
        return _guarded_update(s, job_id, ["running"], worker, status="queued", worker=None,
                               attempts=max(0, job.attempts - 1), error=reason, heartbeat_at=None)


def requeue_stale(reg: Registry, stale_after_s: float, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Running jobs whose worker stopped heartbeating (killed, machine lost): re-queue them to
    resume from their checkpoint, or fail them once `max_attempts` is spent."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=stale_after_s)
    changed: list[dict[str, Any]] = []
    with reg.session() as s:
        q = select(Job).where(Job.status == "running", or_(
            Job.heartbeat_at < cutoff, and_(Job.heartbeat_at.is_(None), Job.started_at < cutoff)))
        for job in s.scalars(_locking(reg, q.order_by(Job.id))).all():
            seen = job.heartbeat_at or job.started_at
            age = f"{(now - seen).total_seconds():.0f} s" if seen else "unknown time"
            lost = f"worker {job.worker} stopped responding (last heartbeat {age} ago)"
            if job.attempts >= job.max_attempts:
                ok = _guarded_update(s, job.id, ["running"], job.worker, status="failed", finished_at=now,
                                     error=f"{lost}; gave up after {job.attempts} attempt(s)")
            else:
                ok = _guarded_update(s, job.id, ["running"], job.worker, status="queued", worker=None,
                                     heartbeat_at=None, error=f"{lost}; re-queued to resume")
            if ok:
                s.refresh(job)
                changed.append(job_dict(job, _slug_of(s, job.character_id)))
    return changed


# -- user side -------------------------------------------------------------------------------------
def get_job(reg: Registry, job_id: int) -> dict[str, Any]:
    with reg.session(write=False) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}; see `lorastrap jobs list`")
        return job_dict(job, _slug_of(s, job.character_id))


def list_jobs(reg: Registry, *, status: str | None = None, character: str | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    """Newest first."""
    if status is not None and status not in STATUSES:
        raise UserError(f"unknown job status {status!r}; use one of {', '.join(STATUSES)}")
    with reg.session(write=False) as s:
        q = select(Job, Character.slug).outerjoin(Character, Character.id == Job.character_id)
        if status:
            q = q.where(Job.status == status)
        if character:
            q = q.where(Character.slug == character)
        rows = s.execute(q.order_by(Job.id.desc()).limit(limit)).all()
        return [job_dict(job, slug) for job, slug in rows]


def _job_in(s: Session, job_id: int, allowed: tuple[str, ...], refusal: str) -> Job:
    """The job, when its status is one of `allowed`; else a one-line refusal ("job N is <refusal>")."""
    job = s.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}; see `lorastrap jobs list`")
    if job.status not in allowed:
        raise Conflict(f"job {job_id} is {refusal.format(status=job.status)}")
    return job


def cancel(reg: Registry, job_id: int) -> dict[str, Any]:
    """Cancel a queued job, or ask a running one to stop (its worker notices at the next heartbeat)."""
    with reg.session() as s:
        job = _job_in(s, job_id, ("queued", "running"), "already {status}; only queued or running jobs can be cancelled")
        if not _guarded_update(s, job_id, [job.status], status="cancelled", finished_at=utcnow(),
                               error="cancelled by user"):
            raise Conflict(f"job {job_id} changed state meanwhile; run `lorastrap jobs show {job_id}`")
        s.refresh(job)
        return job_dict(job, _slug_of(s, job.character_id))


def retry(reg: Registry, job_id: int) -> dict[str, Any]:
    """Queue a failed or cancelled job again with a fresh attempt budget (it resumes if it can)."""
    with reg.session() as s:
        job = _job_in(s, job_id, ("failed", "cancelled"), "{status}; only failed or cancelled jobs can be retried")
        _guarded_update(s, job_id, [job.status], status="queued", attempts=0, worker=None,
                        heartbeat_at=None, finished_at=None, error=None)
        s.refresh(job)
        return job_dict(job, _slug_of(s, job.character_id))


def counts(reg: Registry) -> dict[str, int]:
    with reg.session(write=False) as s:
        return dict(s.execute(select(Job.status, func.count(Job.id)).group_by(Job.status)).all())  # type: ignore[arg-type]
