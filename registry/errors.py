"""The registry's one user-facing error type.

The registry package must not import lorastrap (dependencies point one way), so, like
game_export's ExportError, this subclasses nothing project-specific; the CLI prints it as one
line and exits 2.
"""

from __future__ import annotations


class RegistryError(Exception):
    """The registry cannot be used as it is: missing, damaged, from a newer lorastrap ...
    The message says which, and what to do."""

    exit_code = 2
