"""Watcher benchmark: change-to-job latency and the CPU an idle watcher uses.

    python benchmarks/watch_latency.py [--debounce 0.5 1.0 3.0] [--burst 10 50] [--trials 3] [--idle-seconds 60]

Prints side by side:
  1. latency from the last file event of a burst copied into curated/ to the job row, per debounce
     and burst size (median and worst of --trials), split into settling (debounce + stability
     checks) and the dataset snapshot; the target is debounce + 1 s;
  2. CPU used by an idle `lorastrap watch` process over --idle-seconds (with its worker polling
     the queue, and with --no-worker), against a 1 s polling loop that stats the same folders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import lorastrap.watch.observer as watcher_mod  # noqa: E402
from lorastrap.characters import add_character  # noqa: E402
from lorastrap.jobs import queue as jobs  # noqa: E402
from lorastrap.watch.reactions import Reporter  # noqa: E402
from lorastrap.workspace import init_workspace, load_workspace  # noqa: E402

CHARACTERS = 5
IMAGES_PER_CHARACTER = 40


def make_pngs(folder: Path, n: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"s{seed}-{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def make_workspace(root: Path, debounce: float) -> object:
    ws, _ = init_workspace(root)
    toml = root / "lorastrap.toml"
    toml.write_text(toml.read_text().replace("debounce_s = 3.0", f"debounce_s = {debounce}"))
    ws = load_workspace(root)
    for c in range(CHARACTERS):
        seed = make_pngs(root.parent / "seeds", 1, 1000 + c)[0]
        add_character(ws, f"char{c}", [seed], "1girl, solo")
    return ws


def latency_trials(tmp: Path, debounce: float, burst: int, trials: int) -> list[tuple[float, float, float]]:
    """(total, settle, snapshot) seconds per trial: last write → job row."""
    ws = make_workspace(tmp / f"lat-{debounce}-{burst}" / "ws", debounce)
    marks: dict[str, float] = {}
    real = watcher_mod.on_curated_settled

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        marks["settled"] = time.time()
        return real(*args, **kwargs)

    watcher_mod.on_curated_settled = timed
    results = []
    reg = ws.open_registry()  # type: ignore[attr-defined]
    w = watcher_mod.Watcher(ws, reg, report=Reporter(), on_job=lambda job: marks.__setitem__("job", time.time()))
    try:
        w.start()
        while not w.idle:
            time.sleep(0.05)
        for t in range(trials):
            srcs = make_pngs(tmp / f"src-{debounce}-{burst}-{t}", burst, seed=t * 100 + burst)
            curated = ws.curated_dir("char0")  # type: ignore[attr-defined]
            marks.clear()
            for src in srcs:
                time.sleep(0.02)
                shutil.copyfile(src, curated / src.name)
            last = time.time()
            while "job" not in marks:
                time.sleep(0.005)
            results.append((marks["job"] - last, marks["settled"] - last, marks["job"] - marks["settled"]))
            while not w.idle:
                time.sleep(0.05)
    finally:
        w.stop()
        reg.close()
        watcher_mod.on_curated_settled = real
    return results


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


POLLER = """
import os, sys, time
folders = sys.argv[1:]
print("ready", flush=True)
while True:
    snap = {}
    for f in folders:
        for e in os.scandir(f):
            st = e.stat(); snap[e.path] = (st.st_size, st.st_mtime_ns)
    time.sleep(1.0)
"""


def idle_cpu(ws_root: Path, argv: list[str], seconds: float, ready: str) -> float:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ws_root)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if ready in line:
                break
        time.sleep(2.0)  # let start-up checks finish
        before = cpu_seconds(proc.pid)
        time.sleep(seconds)
        return (cpu_seconds(proc.pid) - before) / seconds * 100
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--debounce", type=float, nargs="+", default=[0.5, 1.0, 3.0])
    ap.add_argument("--burst", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("1. latency: last file event of a burst -> job row (target: debounce + 1 s)")
        print(f"{'debounce':>9} {'burst':>6} {'median':>8} {'worst':>8} {'settle':>8} {'snapshot':>9}  target met")
        for debounce in args.debounce:
            for burst in args.burst:
                r = latency_trials(tmp, debounce, burst, args.trials)
                total = [x[0] for x in r]
                print(f"{debounce:>8.1f}s {burst:>6} {statistics.median(total):>7.2f}s {max(total):>7.2f}s "
                      f"{statistics.median(x[1] for x in r):>7.2f}s {statistics.median(x[2] for x in r):>8.2f}s"
                      f"  {'yes' if max(total) <= debounce + 1 else 'NO'}")

        root = tmp / "idle" / "ws"
        ws = make_workspace(root, 3.0)
        for c in range(CHARACTERS):
            for p in make_pngs(tmp / "idle-src" / str(c), IMAGES_PER_CHARACTER, 500 + c):
                shutil.copyfile(p, ws.curated_dir(f"char{c}") / p.name)  # type: ignore[attr-defined]
        # settle everything first (snapshots, queued jobs cancelled): what follows is pure idling
        watcher_mod.watch(ws, once=True, run_jobs=False, show_progress=False)  # type: ignore[arg-type]
        with ws.open_registry() as reg:  # type: ignore[attr-defined]
            for job in jobs.list_jobs(reg, status="queued"):
                jobs.cancel(reg, job["id"])
        cli = [sys.executable, "-c", "from lorastrap.cli import main; main()", "-w", str(root)]
        folders = [str(ws.curated_dir(f"char{c}")) for c in range(CHARACTERS)]  # type: ignore[attr-defined]
        print(f"\n2. idle CPU over {args.idle_seconds:.0f} s, {CHARACTERS} characters x {IMAGES_PER_CHARACTER} curated images")
        rows = [
            ("lorastrap watch (worker polls queue every 2 s)", idle_cpu(root, [*cli, "watch", "--no-progress"],
                                                                       args.idle_seconds, "Ctrl-C stops")),
            ("lorastrap watch --no-worker", idle_cpu(root, [*cli, "watch", "--no-worker", "--no-progress"],
                                                     args.idle_seconds, "Ctrl-C stops")),
            ("baseline: stat every file once a second", idle_cpu(root, [sys.executable, "-c", POLLER, *folders],
                                                                args.idle_seconds, "ready")),
        ]
        base = rows[-1][1]
        for name, pct in rows:
            ratio = f"{pct / base:.2f}x baseline" if base > 0 else ""
            print(f"  {name:<48} {pct:6.3f} % of one core  {ratio}")


if __name__ == "__main__":
    main()
