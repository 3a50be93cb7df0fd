"""Errors a user can fix. The CLI prints them as one line and exits 2, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: the message says what is wrong and what to do."""

    exit_code = 2


class NotFound(UserError):
    """A named thing (character, LoRA, dataset version, job) does not exist."""


class Conflict(UserError):
    """The request clashes with what exists (duplicate name, trigger, ...)."""


class PreconditionFailed(UserError):
    """A step cannot run yet; the message names the missing precondition and the next action."""
