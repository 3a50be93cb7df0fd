"""Registry at scale: 10,000 characters and 1,000,000 dataset items (SQLite, the default registry).

Times the services a command calls, each including opening the registry as the CLI does:
`character list` (list_characters), `character show` (show_character) and a new dataset version
that changes k items (datasets.apply_changes, in its own transaction). Target: < 100 ms each.
It then shows that version creation costs O(changed items), not O(dataset size): the same change
on a character with 100 items and on one with 10,000, side by side, with and without the
`ix_dataset_items_image` index (the index is dropped for the second run, in the bench copy only).

    python benchmarks/registry_scale.py                 # full size, ~1-2 min on 2 cores
    python benchmarks/registry_scale.py --scale 0.01    # quick look
    python benchmarks/registry_scale.py --dir /tmp/regbench   # keep the registry; later runs reuse it
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lorastrap.characters import list_characters, show_character
from lorastrap.dataset.versions import MANIFEST_MOD, ItemSpec, apply_changes, item_digest
from lorastrap.workspace import Workspace, init_workspace
from registry.db import Registry
from registry.models import Character, DatasetItem

TAGS = ["1girl", "solo", "fox ears", "fox tail", "blonde hair", "yellow eyes", "long hair", "smile",
        "from side", "from behind", "from above", "from below", "full body", "upper body"]
CHUNK = 50_000
STAMP = "2025-01-01 00:00:00"


def _sha(n: int) -> str:
    return hashlib.sha256(f"image-{n}".encode()).hexdigest()


def plan(characters: int, items: int, bigs: list[int], small: int) -> list[int]:
    """Items per character: the big characters first, then `small`-item ones until `items` is
    reached, then empty ones until there are `characters`."""
    sizes = list(bigs)
    left = items - sum(bigs)
    while len(sizes) < characters:
        take = min(small, left)
        sizes.append(take)
        left -= take
    return sizes


def slug_of(index: int) -> str:
    return f"char-{index + 1:05d}"


def _chunks(rows: Iterator[tuple], size: int = CHUNK) -> Iterator[list[tuple]]:  # type: ignore[type-arg]
    batch: list[tuple] = []  # type: ignore[type-arg]
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def populate(ws: Workspace, sizes: list[int], spare: int) -> None:
    """Bulk-insert synthetic rows with executemany (the ORM is for commands, not for loading)."""
    with ws.open_registry() as reg, reg.engine.begin() as conn:
        def many(sql: str, rows: Iterator[tuple]) -> None:  # type: ignore[type-arg]
            for batch in _chunks(rows):
                conn.exec_driver_sql(sql, batch)

        many("INSERT INTO characters (id, slug, display_name, trigger, base_model, stage, round, settings,"
             " created_at, updated_at) VALUES (?, ?, ?, ?, 'tiny', 'seeded', 0, '{}', ?, ?)",
             ((i + 1, slug_of(i), f"Character {i + 1}", f"chr{i + 1:05d}x", STAMP, STAMP)
              for i in range(len(sizes))))
        many("INSERT INTO tags (id, text) VALUES (?, ?)", ((i + 1, t) for i, t in enumerate(TAGS)))
        many("INSERT INTO character_tags (character_id, tag_id, role, position) VALUES (?, ?, 'identity', ?)",
             ((c, (c + p) % len(TAGS) + 1, p) for c in range(1, len(sizes) + 1) for p in range(6)))
        many("INSERT INTO loras (character_id, name, kind, round, file_path, sha256, hyperparams, metrics,"
             " status, created_at) VALUES (?, ?, 'style', ?, 'x.safetensors', ?, '{}', '{}', 'ready', ?)",
             ((c, f"char-{c}-style-r{r}", r, _sha(-c * 10 - r), STAMP)
              for c in range(1, len(sizes) + 1) for r in (1, 2)))

        # one image per item, plus `spare` unused images per character for additions
        def images() -> Iterator[tuple]:  # type: ignore[type-arg]
            n = 0
            for c, size in enumerate(sizes, start=1):
                for _ in range(size + spare):
                    n += 1
                    sha = _sha(n)
                    yield (n, sha, c, 64, 64, 1000, f"{sha[:2]}/{sha}.png", "generated", STAMP)

        many("INSERT INTO images (id, sha256, character_id, width, height, size_bytes, blob_path, origin,"
             " provenance, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?)", images())

        manifests: list[tuple] = []  # type: ignore[type-arg]

        def items() -> Iterator[tuple]:  # type: ignore[type-arg]
            n = 0
            for c, size in enumerate(sizes, start=1):
                total = 0
                for k in range(size):
                    n += 1
                    caption = f"chr{c:05d}x, 1girl, fox ears, {TAGS[8 + k % 6]}"
                    total += item_digest(_sha(n), caption, 2)
                    yield (c, n, caption, 2, 1)
                n += spare
                if size:
                    manifests.append((c, 1, "style", f"{total % MANIFEST_MOD:064x}", "style", size, STAMP))

        many("INSERT INTO dataset_items (character_id, image_id, caption, repeats, added_in)"
             " VALUES (?, ?, ?, ?, ?)", items())
        many("INSERT INTO dataset_versions (character_id, number, kind, manifest_hash, caption_policy,"
             " item_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", iter(manifests))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median (wall ms, CPU ms) after one warm-up call. CPU time is what this process itself spent:
    on a shared, loaded machine the wall time also counts waiting for a core."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def first_images(ws: Workspace, slug: str, k: int) -> list[int]:
    """Image ids of k live items of `slug` (picked before timing: not part of the measurement)."""
    with ws.open_registry() as reg, reg.session() as s:
        c = s.scalars(select(Character).where(Character.slug == slug)).one()
        return list(s.scalars(select(DatasetItem.image_id).where(
            DatasetItem.character_id == c.id, DatasetItem.removed_in.is_(None))
            .order_by(DatasetItem.image_id).limit(k)))


def version_command(ws: Workspace, slug: str, k: int) -> Callable[[], object]:
    """What a command does: open the registry, make a version recaptioning k items, commit, close."""
    ids, counter = first_images(ws, slug, k), iter(range(1, 1_000_000))

    def run() -> object:
        n = next(counter)
        with ws.open_registry() as reg, reg.session() as s:
            c = s.scalars(select(Character).where(Character.slug == slug)).one()
            version = apply_changes(s, c, add=[ItemSpec(i, f"{c.trigger}, edit {n}", 2) for i in ids])
            assert version is not None
        return version

    return run


def version_only(reg: Registry, ws: Workspace, slug: str, k: int, repeat: int) -> tuple[float, float]:
    """apply_changes + commit alone, on an open registry: the part that must not grow with the dataset."""
    ids, counter = first_images(ws, slug, k), iter(range(1, 1_000_000))

    def run() -> None:
        with Session(reg.engine) as s:
            c = s.scalars(select(Character).where(Character.slug == slug)).one()
            apply_changes(s, c, add=[ItemSpec(i, f"{c.trigger}, only {k} {next(counter)}", 2) for i in ids])
            s.commit()

    return timed(run, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--characters", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--big", default="10000,100000", help="item counts of the big characters")
    ap.add_argument("--small", type=int, default=100, help="items of each other character")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply characters, items and big sizes")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--dir", type=Path, help="where to build the registry (default: a temp dir); "
                    "a registry already built there is reused")
    args = ap.parse_args()
    n_chars, n_items = int(args.characters * args.scale), int(args.items * args.scale)
    bigs = [max(args.small, int(int(b) * args.scale)) for b in args.big.split(",")]
    root = (args.dir or Path(tempfile.mkdtemp(prefix="lorastrap-bench-"))) / "ws"
    ws, _ = init_workspace(root)

    sizes = plan(n_chars, n_items, bigs, args.small)
    with ws.open_registry() as reg, reg.engine.begin() as conn:
        present = conn.execute(text("SELECT count(*) FROM dataset_items")).scalar()
        conn.execute(text(  # a previous run dropped it at the end
            "CREATE INDEX IF NOT EXISTS ix_dataset_items_image ON dataset_items (character_id, image_id, removed_in)"))
    if present:
        load = f"reused ({present:,} item rows)"
    else:
        t0 = time.perf_counter()
        populate(ws, sizes, spare=10)
        load = f"bulk load {time.perf_counter() - t0:.1f} s"
    db_mb = (ws.state_dir / "registry.sqlite3").stat().st_size / 1e6
    print(f"registry: {len(sizes):,} characters, {sum(sizes):,} dataset items, {db_mb:.0f} MB; "
          f"{load}; {ws.database_url}\n")
    # one character of each size, smallest first: (items, slug)
    probes = sorted({size: slug_of(i) for i, size in reversed(list(enumerate(sizes))) if size}.items())

    rows = [("open + close the registry (every command pays it)", timed(lambda: ws.open_registry().close(), args.repeat)),
            (f"character list ({len(sizes):,} characters)", timed(lambda: list_characters(ws), args.repeat))]
    rows += [(f"character show, {n:,} items", timed(lambda slug=slug: show_character(ws, slug), args.repeat))
             for n, slug in probes]
    rows += [(f"new version, 10 of {n:,} items changed", timed(version_command(ws, slug, 10), args.repeat))
             for n, slug in probes]
    print("| operation (median of a whole service call: open, query, commit, close) | wall ms | CPU ms |")
    print("|---|---:|---:|")
    for label, (wall, cpu) in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} |")

    def scaling(note: str) -> None:
        print(f"\n{note}")
        print("| changed items k | " + " | ".join(f"{n:,} items: wall / CPU ms" for n, _ in probes)
              + f" | CPU ratio {probes[-1][0]:,} : {probes[0][0]:,} |")
        print("|---:|" + "---:|" * (len(probes) + 1))
        with ws.open_registry() as reg:
            for k in (1, 10, 100):
                cells = [version_only(reg, ws, slug, k, args.repeat) for _, slug in probes]
                print(f"| {k} | " + " | ".join(f"{w:.1f} / {c:.1f}" for w, c in cells)
                      + f" | {cells[-1][1] / cells[0][1]:.2f} |")

    scaling("apply_changes + commit alone (registry already open), with ix_dataset_items_image:")
    with ws.open_registry() as reg, reg.engine.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_dataset_items_image"))
    scaling("the same without ix_dataset_items_image (what the index fixes):")


if __name__ == "__main__":
    main()
