"""The `lorastrap` command: a click group whose subcommands live one module per group.

Modules are imported lazily, so `lorastrap --help` and registry commands never import torch.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from lorastrap import __version__
from lorastrap.cli.common import AppContext, user_error_types
from lorastrap.cli.failures import INTERNAL_EXIT, explain, internal_error

# command name → "module:attribute"; each module holds one click command or group.
COMMANDS: dict[str, str] = {
    "init": "lorastrap.cli.init:init_cmd",
    "character": "lorastrap.cli.character:character",
    "tags": "lorastrap.cli.tags:tags",
    "dataset": "lorastrap.cli.dataset:dataset",
    "db": "lorastrap.cli.db:db",
    "status": "lorastrap.cli.bootstrap:status_cmd",
    "bootstrap": "lorastrap.cli.bootstrap:bootstrap_cmd",
    "curate": "lorastrap.cli.bootstrap:curate_cmd",
    "captions": "lorastrap.cli.bootstrap:captions_cmd",
    "lineage": "lorastrap.cli.bootstrap:lineage_cmd",
    "demo": "lorastrap.cli.demo:demo_cmd",
    "train": "lorastrap.cli.train:train_cmd",
    "generate": "lorastrap.cli.generate:generate_cmd",
    "model": "lorastrap.cli.model:model",
    "lab": "lorastrap.cli.lab:lab",
    "style": "lorastrap.cli.clash:style",
    "clash": "lorastrap.cli.clash:clash",
    "export": "lorastrap.cli.export:export",
    "watch": "lorastrap.cli.watch:watch_cmd",
    "worker": "lorastrap.cli.watch:worker_cmd",
    "jobs": "lorastrap.cli.jobs:jobs",
    "ui": "lorastrap.cli.ui:ui_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lorastrap")
@click.option("--workspace", "-w", type=click.Path(file_okay=False), envvar="LORASTRAP_WORKSPACE",
              help="Workspace folder (default: nearest parent with lorastrap.toml).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--no-progress", is_flag=True,
              help="No progress bars or progress lines from any command (also LORASTRAP_PROGRESS=off).")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, debug: bool, no_progress: bool) -> None:
    """lorastrap: bootstrap a character LoRA from one image, track it, export it to game engines."""
    from lorastrap.kernel.progress import suppressed

    app = ctx.obj if isinstance(ctx.obj, AppContext) else AppContext()
    app.workspace_path, app.debug = workspace, debug
    ctx.obj = app
    ctx.with_resource(suppressed(no_progress))


def main(argv: list[str] | None = None) -> None:
    """The console entry point: every failure ends as one line on stderr and an exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    app = AppContext()
    try:
        # Without standalone mode click returns ctx.exit(n)'s code (commands themselves return None).
        rv = cli.main(args=args, prog_name="lorastrap", standalone_mode=False, obj=app)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except user_error_types() as exc:
        _fail(f"error: {exc}", getattr(exc, "exit_code", 2), debug)
    except Exception as exc:  # noqa: BLE001 - the boundary: translate, never a bare traceback
        explained = explain(exc, app.registry_location())
        if explained is not None:
            _fail(f"error: {explained[0]}", explained[1], debug)
        _fail(internal_error(exc), INTERNAL_EXIT, debug)
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    # One line, whatever the user typed into the values the message quotes.
    click.echo(message.replace("\r", "\\r").replace("\n", "\\n"), err=True)
    sys.exit(code)
