"""Direction rows from view tags: down (front), up (behind), side and the other side.

Generated images carry the view they were prompted with ("from side", "from behind", ...). Games
want one row per facing. A side view can be mirrored into the other side, but only on request:
characters are often asymmetric (a sword hand, a hair parting), so the result is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

DOWN, UP, SIDE, OTHER_SIDE = "down", "up", "side", "other_side"
DIRECTION_ORDER = (DOWN, UP, SIDE, OTHER_SIDE)

# Most specific first: "from behind" must win over a generic "from".
_VIEW_WORDS: tuple[tuple[str, str], ...] = (
    ("other side", OTHER_SIDE),
    ("facing left", OTHER_SIDE),
    ("from left", OTHER_SIDE),
    ("behind", UP),
    ("back", UP),
    ("rear", UP),
    ("profile", SIDE),
    ("side", SIDE),
    ("facing right", SIDE),
    ("from right", SIDE),
    ("front", DOWN),
    ("above", DOWN),
    ("below", DOWN),
    ("three-quarter", DOWN),
    ("3/4", DOWN),
    ("portrait", DOWN),
)


def view_to_direction(view: str | None) -> str | None:
    """The direction row for a view tag; None when the view is unknown or missing."""
    if not view:
        return None
    text = view.lower().replace("_", " ")
    for word, direction in _VIEW_WORDS:
        # Whole words only: "back" must not match "background".
        if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text):
            return direction
    return None


def assign_directions(views: Sequence[str | None]) -> tuple[list[str], list[str]]:
    """Direction per frame plus warnings; unknown views go to the front row and are reported."""
    directions: list[str] = []
    unknown: set[str] = set()
    for view in views:
        direction = view_to_direction(view)
        if direction is None:
            unknown.add(view or "<no view tag>")
            direction = DOWN
        directions.append(direction)
    warnings = []
    if unknown:
        warnings.append("frames without a known view were put in the 'down' row: "
                        + ", ".join(sorted(unknown)))
    return directions, warnings


def direction_sort_key(direction: str) -> int:
    return DIRECTION_ORDER.index(direction) if direction in DIRECTION_ORDER else len(DIRECTION_ORDER)


def needs_mirror(directions: Sequence[str]) -> bool:
    """True when there are side frames but none for the other side."""
    return SIDE in directions and OTHER_SIDE not in directions
