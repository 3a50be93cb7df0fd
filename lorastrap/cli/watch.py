"""`lorastrap watch` and `lorastrap worker`."""

from __future__ import annotations

import click

from lorastrap.cli import params
from lorastrap.cli.common import echo_json, json_option, pass_app


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _summary(summary: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(summary.items())) or "no jobs run"


@click.command("watch")
@click.option("--once", is_flag=True, help="Process what changed since last time, run queued jobs, exit.")
@click.option("--no-worker", is_flag=True, help="Only queue jobs; `lorastrap worker` runs them (e.g. on GPU machines).")
@click.option("--no-progress", is_flag=True, help="No progress bars (for logs).")
@json_option
@pass_app
def watch_cmd(app, once: bool, no_worker: bool, no_progress: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Watch every character's curated/ and inbox/; retrain when they change (Ctrl-C stops)."""
    from lorastrap.kernel.progress import suppressed
    from lorastrap.watch.observer import watch

    with suppressed(no_progress):  # also the bars of what the jobs run (training, generation)
        summary = watch(app.workspace(), once=once, run_jobs=not no_worker, emit=_echo,
                        show_progress=not no_progress)
    echo_json(summary) if as_json else click.echo(_summary(summary))


@click.command("worker")
@click.option("--once", is_flag=True, help="Exit when no queued job is left.")
@click.option("--kind", "kinds", multiple=True, help="Only take jobs of this kind (repeatable).")
@click.option("--name", type=params.NAME, help="Worker name shown in `jobs list` (default host:pid).")
@click.option("--max-jobs", type=params.ints(1, 1_000_000), help="Exit after this many jobs.")
@click.option("--no-progress", is_flag=True, help="No progress bars (for logs).")
@json_option
@pass_app
def worker_cmd(app, once: bool, kinds: tuple[str, ...], name: str | None, max_jobs: int | None,  # type: ignore[no-untyped-def]
               no_progress: bool, as_json: bool) -> None:
    """Run queued jobs one at a time (no watching): one worker per GPU machine."""
    from lorastrap.jobs.worker import run_worker
    from lorastrap.kernel.progress import suppressed

    with suppressed(no_progress):  # also the bars of what the jobs run (training, generation)
        summary = run_worker(app.workspace(), drain=once, kinds=list(kinds) or None, name=name, emit=_echo,
                             show_progress=not no_progress, max_jobs=max_jobs)
    echo_json(summary) if as_json else click.echo(_summary(summary))
