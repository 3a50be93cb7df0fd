"""View coverage of the NEXT dataset version, live: the seed set plus what is in curated/ now.

`lorastrap status` counts the views of the latest dataset version; while a person curates, the
folder changes before any version is made. This counts the seed items the way the status does
(a view tag in the caption, else the image's view) and each curated file by its sidecar caption's
view tag, else the view in its PNG provenance (a kept candidate), else that of the candidate with
its name (an edited one), else front.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from lorastrap.dataset.captions import read_sidecar
from lorastrap.dataset.sources import source_items, view_of
from lorastrap.images import curated_files
from lorastrap.kernel.pngmeta import png_view
from lorastrap.queries import get_character
from lorastrap.tags import parse_tags
from lorastrap.workspace import Workspace


def curated_view(ws: Workspace, slug: str, path: Path, views: Sequence[str]) -> str:
    caption = read_sidecar(path)
    tagged = [v for v in views if caption and v in parse_tags(caption)]
    if tagged:
        return tagged[0]
    view = png_view(path)
    if view is None:
        twins = sorted(ws.candidates_dir(slug).glob(f"r*/{path.name}"))
        view = png_view(twins[-1]) if twins else None
    return view or "front"


def live_view_coverage(ws: Workspace, slug: str) -> dict[str, int]:
    """Images per configured view (then any other view) in the next version, seed included."""
    views = list(ws.config.bootstrap.views)
    counts: Counter[str] = Counter()
    with ws.session(write=False) as s:
        character = get_character(s, slug)
        for image, variable in source_items(s, character):
            tagged = [v for v in views if v in variable]
            counts[tagged[0] if tagged else view_of(image)] += 1
    for path in curated_files(ws.curated_dir(slug))[0]:
        counts[curated_view(ws, slug, path, views)] += 1
    if "front" in counts and "front" not in views and views:
        counts[views[0]] += counts.pop("front")  # as `status`: front-like images count as the first view
    return {v: counts.get(v, 0) for v in [*views, *sorted(set(counts) - set(views))]}
