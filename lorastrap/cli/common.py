"""What every CLI module shares: the app context, output helpers, user-error types."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from lorastrap.kernel.errors import UserError


def user_error_types() -> tuple[type[BaseException], ...]:
    """Errors printed as one line: ours, and game_export's and registry's (each package keeps its
    own error type)."""
    from registry.errors import RegistryError

    types: list[type[BaseException]] = [UserError, RegistryError]
    try:
        from game_export.errors import ExportError

        types.append(ExportError)
    except ImportError:  # pragma: no cover - game_export always ships
        pass
    return tuple(types)


@dataclass
class AppContext:
    workspace_path: str | None = None
    debug: bool = False
    _workspace: Any = field(default=None, repr=False)

    def workspace(self):  # type: ignore[no-untyped-def]
        """The workspace of this command, as ONE unit of work: its registry is opened at most once
        (on first use) and closed when the command ends."""
        if self._workspace is None:
            from lorastrap.workspace import find_workspace

            ws = find_workspace(override=self.workspace_path)
            ctx = click.get_current_context(silent=True)
            self._workspace = ctx.find_root().with_resource(ws.unit()) if ctx is not None else ws
        return self._workspace

    def registry_location(self) -> str | None:
        """Where the registry of the workspace in use is, for error messages (None: none loaded)."""
        if self._workspace is None:
            return None
        return self._workspace.registry_location


pass_app = click.make_pass_decorator(AppContext)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def echo_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned text table (no dependency); empty cells print as '-'."""
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def parse_floats(text: str, option: str, lo: float = -10.0, hi: float = 10.0) -> list[float]:
    """A comma-separated list of finite numbers in [lo, hi] (`--weights 0.3,0.6,1.0`), or a usage error."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers (e.g. 0.3,0.6,1.0)",
                                 param_hint=option) from None
    if not values:
        raise click.BadParameter("give at least one number", param_hint=option)
    bad = [v for v in values if not (math.isfinite(v) and lo <= v <= hi)]
    if bad:
        raise click.BadParameter(f"{bad[0]:g} is not a number from {lo:g} to {hi:g}", param_hint=option)
    return values
