"""End to end with the real training service on the tiny model: a curated change trains a LoRA
through `watch --once`; SIGTERM mid-training checkpoints, re-queues, and the next worker resumes.
(Real worker processes are killed in test_jobs_crash.py with the light "sleep" kind.)"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from lorastrap.characters import add_character
from lorastrap.jobs import queue as jobs
from lorastrap.jobs.worker import run_worker
from lorastrap.watch.observer import watch
from lorastrap.workspace import load_workspace

pytestmark = pytest.mark.slow


def _train_ws(watch_ws, tiny_model_dir: Path, steps: int):  # type: ignore[no-untyped-def]
    toml = watch_ws.root / "lorastrap.toml"
    text = toml.read_text().replace('base_model = "tiny"', f'base_model = "{tiny_model_dir}"')
    text += (f"\n[training]\nmax_train_steps = {steps}\nrank = 4\nalpha = 2.0\nbatch_size = 2\n"
             "sample_steps = 2\nsample_every_steps = 0\nsave_every_steps = 0\n")
    toml.write_text(text)
    return load_workspace(watch_ws.root)


def _curate(ws, slug: str, make_png, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        shutil.copyfile(make_png(f"cur{i}.png", hue=25 * i + 3), ws.curated_dir(slug) / f"cur{i}.png")


def test_watch_once_trains_a_lora_on_a_curated_change(watch_ws, tiny_model_dir, seed_image, make_png) -> None:  # type: ignore[no-untyped-def]
    ws = _train_ws(watch_ws, tiny_model_dir, steps=2)
    add_character(ws, "kitsune", [seed_image], "1girl, fox ears")
    _curate(ws, "kitsune", make_png, 2)
    summary = watch(ws, once=True, show_progress=False)
    assert summary == {"queued": 1, "done": 1}
    with ws.open_registry() as reg:
        [job] = jobs.list_jobs(reg)
    assert job["status"] == "done" and job["payload"]["dataset_version"] == 2
    assert job["result"]["kind"] == "style" and job["result"]["dataset_version"] == 2
    assert ws.abs(job["result"]["path"]).is_file()
    assert watch(ws, once=True, show_progress=False) == {"queued": 0}  # nothing changed since


def test_sigterm_mid_training_checkpoints_and_the_next_worker_resumes(
        watch_ws, tiny_model_dir, seed_image, make_png, poll) -> None:  # type: ignore[no-untyped-def]
    ws = _train_ws(watch_ws, tiny_model_dir, steps=40)
    add_character(ws, "kitsune", [seed_image], "1girl, fox ears")
    _curate(ws, "kitsune", make_png, 2)
    assert watch(ws, once=True, run_jobs=False, show_progress=False) == {"queued": 1}
    with ws.open_registry() as reg:
        [job] = jobs.list_jobs(reg)

        def send_sigterm_mid_training() -> None:
            poll(lambda: (jobs.get_job(reg, job["id"])["result"].get("progress") or {}).get("done", 0) >= 3,
                 timeout=120, every=0.02)
            os.kill(os.getpid(), signal.SIGTERM)  # to this process: the worker runs in the main thread

        # a SIGTERM arriving after the worker restored the handlers must not end pytest
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        sender = threading.Thread(target=send_sigterm_mid_training)
        try:
            sender.start()
            assert run_worker(ws, drain=True, show_progress=False) == {"released": 1}
            sender.join(30)
        finally:
            signal.signal(signal.SIGTERM, previous)
        row = jobs.get_job(reg, job["id"])
        assert (row["status"], row["attempts"]) == ("queued", 0)
        assert "checkpoint saved" in row["error"]

        assert run_worker(ws, drain=True, show_progress=False) == {"done": 1}  # resumes it
        row = jobs.get_job(reg, job["id"])
    assert row["status"] == "done" and row["attempts"] == 1 and row["result"]["steps"] == 40
    train_log = ws.abs(row["result"]["log_path"]).read_text()
    assert "interrupted at step" in train_log and "resumed at step" in train_log
