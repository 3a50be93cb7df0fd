"""Adaptive rounds: more candidates only for the views short of passing ones, never past the cap."""

from __future__ import annotations

from pathlib import Path

from lorastrap.method.adaptive import extra_batch, run_adaptive
from lorastrap.method.view_plan import PlannedImage, plan_round, round_seed

VIEWS = ["from front", "from side", "from behind"]


class Fake:
    """Generates a file name per planned image; `good` views pass the check, others never do."""

    def __init__(self, good: set[str]) -> None:
        self.good, self.batches = good, []

    def generate(self, plan):  # type: ignore[no-untyped-def]
        self.batches.append(list(plan))
        return [Path(f"{p.view.replace(' ', '-')}-{p.seed}.png") for p in plan]

    def check(self, paths):  # type: ignore[no-untyped-def]
        return [any(p.name.startswith(v.replace(" ", "-")) for v in self.good) for p in paths]


def test_a_view_that_never_passes_stops_at_the_cap() -> None:
    fake = Fake(good={"from front", "from side"})
    plan = plan_round("kit", 1, 6, VIEWS, {"from front": 4})
    result = run_adaptive("kit", 1, plan, need=6, views=VIEWS, coverage={"from front": 4}, cap=14,
                          generate=fake.generate, check=fake.check)
    assert len(result.paths) == 14 and result.capped
    assert result.short == {"from behind": result.wanted["from behind"]}
    # after the planned batch, only the short view was generated again
    assert all(p.view == "from behind" for batch in fake.batches[1:] for p in batch)
    seeds = [p.seed for batch in fake.batches for p in batch]
    assert len(set(seeds)) == len(seeds)  # every extra candidate has a new seed


def test_no_extra_batch_when_every_view_has_its_share() -> None:
    fake = Fake(good=set(VIEWS))
    plan = plan_round("kit", 2, 6, VIEWS, {})
    result = run_adaptive("kit", 2, plan, need=3, views=VIEWS, coverage={}, cap=48,
                          generate=fake.generate, check=fake.check)
    assert result.batches == 1 and not result.capped and not result.short
    assert len(result.paths) == 6 and all(result.verdicts.values())


def test_extra_seeds_continue_the_rounds_sequence() -> None:
    batch = extra_batch("kit", 3, {"from side": 2, "from behind": 1}, start=12, room=5)
    assert [p.view for p in batch] == ["from side"] * 4 + ["from behind"]
    assert batch[0] == PlannedImage("from side", round_seed("kit", 3, 12))
    assert extra_batch("kit", 3, {"from side": 2}, start=12, room=5) == batch[:4]  # reproducible
