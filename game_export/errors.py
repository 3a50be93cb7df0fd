"""The one error type of game_export.

game_export must not import lorastrap (dependencies point one way), so this subclasses nothing
project-specific; the CLI layer maps it to a one-line message and exit code 2.
"""

from __future__ import annotations


class ExportError(Exception):
    """A user-fixable export problem; the message says what is wrong and what to do."""

    exit_code = 2
