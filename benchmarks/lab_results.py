"""Results of the lab's paired benchmarks, kept in OUT/results.json and added to run by run, so a
rerun (or a run cut short) keeps what was measured and skips it."""

from __future__ import annotations

import json
from pathlib import Path


class Results(dict):
    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "results.json"
        super().__init__(json.loads(self.path.read_text()) if self.path.exists() else {})

    def add(self, key: str, row: dict) -> None:
        self[key] = row
        self.path.write_text(json.dumps(self, indent=1))
