"""Yield of the method's rounds in the fidelity benchmark: of the candidates a round generated,
how many were right (identity and the asked view, by the reader), how many the round needed, and
how many of the kept ones were right (the curator's precision)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def _fraction(a: int, b: int) -> float | None:
    return a / b if b else None


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {sd:.2f}"


def round_totals(rows: Sequence[Mapping]) -> dict[int, dict[str, int]]:
    """Per round: generated, right, kept, kept_right summed over views, and needed."""
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        total = {"generated": 0, "right": 0, "kept": 0, "kept_right": 0, "needed": int(row.get("needed", 0))}
        for counts in row["views"].values():
            for k in ("generated", "right", "kept", "kept_right"):
                total[k] += int(counts[k])
        out[int(row["round"])] = total
    return out


def yield_summary(yields: Mapping[str, Sequence[Mapping]]) -> dict[str, dict]:
    """{round: {"right": [fraction per character], "views": {view: [fraction per character]},
    "needed", "kept", "kept_right" (sums)}} from per-character round rows."""
    summary: dict[str, dict] = {}
    for rows in yields.values():
        totals = round_totals(rows)
        for row in rows:
            r = str(row["round"])
            entry = summary.setdefault(r, {"right": [], "views": {}, "needed": [], "kept": 0, "kept_right": 0,
                                           "generated": 0})
            t = totals[int(row["round"])]
            frac = _fraction(t["right"], t["generated"])
            if frac is not None:
                entry["right"].append(frac)
            entry["needed"].append(t["needed"])
            entry["kept"] += t["kept"]
            entry["kept_right"] += t["kept_right"]
            entry["generated"] += t["generated"]
            for view, counts in row["views"].items():
                f = _fraction(int(counts["right"]), int(counts["generated"]))
                if f is not None:
                    entry["views"].setdefault(view, []).append(f)
    return summary


def yield_table(yields: Mapping[str, Sequence[Mapping]]) -> str:
    """Markdown: per round, the fraction of right candidates (mean ± sd over characters) overall
    and per view, the images the round needed, and how many kept ones were right."""
    summary = yield_summary(yields)
    views = sorted({v for s in summary.values() for v in s["views"]})
    head = ("## Round yield: right candidates (identity and view, by the reader) / generated\n\n"
            "| round | all views | " + " | ".join(views) + " | needed | kept right / kept |\n"
            "|---|---|" + "---|" * len(views) + "---|---|\n")
    lines = []
    for r in sorted(summary, key=int):
        s = summary[r]
        cells = [_cell(s["views"].get(v, [])) for v in views]
        lines.append(f"| {r} | {_cell(s['right'])} | " + " | ".join(cells)
                     + f" | {statistics.fmean(s['needed']):.1f} | {s['kept_right']}/{s['kept']} |")
    per_char = []
    for slug, rows in yields.items():
        totals = round_totals(rows)
        if 1 in totals:
            per_char.append(f"{slug} {totals[1]['right']}/{totals[1]['generated']}")
    tail = ("\nRound 1, right / generated per character: " + ", ".join(per_char) + "\n") if per_char else ""
    return head + "\n".join(lines) + "\n" + tail
