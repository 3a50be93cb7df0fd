"""`lorastrap jobs list|show|cancel|retry|add`."""

from __future__ import annotations

import json

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, echo_table, json_option, pass_app

STATUSES = ("queued", "running", "done", "failed", "cancelled")


@click.group()
def jobs() -> None:
    """The training job queue (filled by `lorastrap watch`, run by `lorastrap worker`)."""


def _progress(job: dict) -> str | None:  # type: ignore[type-arg]
    p = (job.get("result") or {}).get("progress") if job["status"] == "running" else None
    if not p:
        return None
    return f"{p['done']}/{p['total']}" if p.get("total") else str(p["done"])


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this state.")
@click.option("--character", help="Only jobs of this character (slug).")
@click.option("--limit", type=params.ints(1, 100_000), default=50, show_default=True)
@json_option
@pass_app
def list_(app, status: str | None, character: str | None, limit: int, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Jobs, newest first."""
    from lorastrap.jobs.manage import jobs_list

    rows = jobs_list(app.workspace(), status=status, character=character, limit=limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no jobs")
        return
    for r in rows:
        r["what"] = _what(r)
        r["tries"] = f"{r['attempts']}/{r['max_attempts']}"
        r["progress"] = _progress(r)
    echo_table(rows, ["id", "status", "what", "tries", "progress", "worker", "created_at", "error"])


def _what(job: dict) -> str:  # type: ignore[type-arg]
    p = job["payload"]
    if job["kind"] == "train":
        return f"train {p.get('kind')} {job['character']} v{p.get('dataset_version')}"
    if job["kind"] == "bootstrap":
        return f"bootstrap {job['character']}"
    return job["kind"]


@jobs.command("show")
@click.argument("job_id", type=params.ID)
@json_option
@pass_app
def show(app, job_id: int, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """One job: state, attempts, heartbeat, error, result and the end of its log."""
    from lorastrap.jobs.manage import jobs_show

    info = jobs_show(app.workspace(), job_id)
    if as_json:
        echo_json(info)
        return
    click.echo(f"job {info['id']}: {_what(info)}  [{info['status']}]  attempt {info['attempts']}/{info['max_attempts']}")
    for key in ("character", "worker", "created_at", "started_at", "heartbeat_at", "finished_at", "log_path", "error"):
        if info.get(key):
            click.echo(f"  {key}: {info[key]}")
    click.echo(f"  payload: {json.dumps(info['payload'])}")
    if info["result"]:
        click.echo(f"  result: {json.dumps(info['result'], default=str)}")
    if info["log_tail"]:
        click.echo("  log (last lines):")
        for line in info["log_tail"]:
            click.echo(f"    {line}")


@jobs.command("cancel")
@click.argument("job_id", type=params.ID)
@pass_app
def cancel(app, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Cancel a queued job, or stop a running one (at its next heartbeat)."""
    from lorastrap.jobs.manage import jobs_cancel

    info = jobs_cancel(app.workspace(), job_id)
    click.echo(f"job {info['id']} cancelled" + (" (its worker stops it at the next heartbeat)"
                                                if info["worker"] else ""))


@jobs.command("retry")
@click.argument("job_id", type=params.ID)
@pass_app
def retry(app, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Queue a failed or cancelled job again (it resumes from its checkpoint when it has one)."""
    from lorastrap.jobs.manage import jobs_retry

    info = jobs_retry(app.workspace(), job_id)
    click.echo(f"job {info['id']} queued again")


@jobs.command("add")
@click.argument("kind")
@click.option("--character", help="Character (train and bootstrap jobs).")
@click.option("--dataset", "dataset_version", type=params.ID, help="Dataset version number (train; default latest).")
@click.option("--payload", default="{}", help='JSON payload for other kinds, e.g. \'{"steps": 20}\' for sleep.')
@json_option
@pass_app
def add(app, kind: str, character: str | None, dataset_version: int | None, payload: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Queue a job by hand: `train|bootstrap --character NAME`, or `sleep` to test a worker set-up."""
    from lorastrap.jobs.manage import jobs_add
    from lorastrap.kernel.errors import UserError

    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise UserError(f"--payload is not valid JSON ({exc.msg}); give an object like '{{\"steps\": 20}}'") from None
    if not isinstance(data, dict):
        raise UserError("--payload must be a JSON object like '{\"steps\": 20}'")
    info = jobs_add(app.workspace(), kind, character=character, dataset_version=dataset_version, payload=data)
    echo_json(info) if as_json else click.echo(f"queued job {info['id']} ({_what(info)})")
