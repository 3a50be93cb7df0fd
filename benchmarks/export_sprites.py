"""Sprite export benchmark: speed and memory of a 200-frame export, model loads, packing density.

    python benchmarks/export_sprites.py [--frames 200] [--size 512]

Prints side-by-side numbers:
  1. flood export of N frames at SIZE px (all four engines): seconds, frames/s, peak RSS of the
     export process;
  2. rembg-style matting with ONE session per export against a new session per frame (a real
     1-layer ONNX model through onnxruntime, when installed): model loads and time;
  3. packing area efficiency on mixed sprite sizes: tight (MaxRects) against grid.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from game_export import ENGINES, ExportRequest, FrameSpec, export_sprites  # noqa: E402
from game_export.background import RembgRemover  # noqa: E402
from game_export.packing import pack_grid, pack_tight  # noqa: E402
from game_export.synthetic import Figure, draw_frame, save_frame  # noqa: E402


def make_frames(folder: Path, count: int, size: int) -> list[FrameSpec]:
    rng = random.Random(0)
    specs = []
    for i in range(count):
        height = int(size * rng.uniform(0.6, 0.85))
        fig = Figure(x=rng.randint(10, size - int(0.45 * height) - 10), y=rng.randint(5, size - height - 5),
                     height=height, colour=(rng.randint(40, 220), rng.randint(40, 220), rng.randint(40, 220)),
                     stride=rng.uniform(-1, 1))
        image, _ = draw_frame((size, size), fig, background=(244, 244, 246))
        specs.append(FrameSpec(save_frame(image, folder / f"walk_{i:03d}.png"), ("idle", "walk", "run")[i % 3]))
    return specs


def _export_child(specs, out, pack, queue) -> None:
    start = time.perf_counter()
    result = export_sprites(ExportRequest(frames=specs, character="bench", out_dir=out,
                                          engines=frozenset(ENGINES), pack=pack, size=256))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((time.perf_counter() - start, len(result.sheet.pages), result.efficiency, peak_mb))


def bench_flood(specs, workdir: Path, pack: str) -> tuple[float, int, float, float]:
    """Run one export in a fresh process so its peak RSS is the export's alone."""
    queue: mp.Queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_export_child, args=(specs, workdir / f"out_{pack}", pack, queue))
    proc.start()
    seconds, pages, efficiency, peak_mb = queue.get()
    proc.join()
    return seconds, pages, efficiency, peak_mb


def _onnx_session_factory(workdir: Path):
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return None, None
    path = workdir / "seg.onnx"
    conv = torch.nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(-10.0)
        conv.bias.fill_(21.0)
    torch.onnx.export(torch.nn.Sequential(conv, torch.nn.Sigmoid()).eval(), torch.zeros(1, 3, 32, 32),
                      str(path), input_names=["input"], output_names=["mask"],
                      dynamic_axes={"input": {2: "h", 3: "w"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1

    def open_session():
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(session, image):
        import numpy as np

        x = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        return session.run(None, {"input": x})[0][0, 0]

    return open_session, run


def bench_sessions(specs, workdir: Path) -> None:
    open_session, run = _onnx_session_factory(workdir)
    if open_session is None:
        print("  rembg sessions: skipped (onnxruntime/torch not installed)")
        return
    from game_export.cutout import load_frame

    images = [load_frame(spec.path).convert("RGB") for spec in specs]
    shared = RembgRemover(open_session, run)
    start = time.perf_counter()
    for image in images:
        shared.matte(image)
    one_session = time.perf_counter() - start
    start = time.perf_counter()
    fresh_loads = 0
    for image in images:  # what a naive exporter does: a new session for every frame
        fresh = RembgRemover(open_session, run)
        fresh.matte(image)
        fresh_loads += fresh.loads
    per_frame = time.perf_counter() - start
    result = export_sprites(ExportRequest(frames=specs, character="bench", out_dir=workdir / "out_onnx",
                                          engines=frozenset({"json"}), preview=False,
                                          remover=RembgRemover(open_session, run)))
    print(f"  rembg-style matting, 1-layer ONNX model, {len(specs)} frames (matting only): one session: "
          f"{shared.loads} load, {one_session:.2f} s | new session per frame: {fresh_loads} loads, "
          f"{per_frame:.2f} s ({per_frame / one_session:.1f}x); model loads in a whole export: "
          f"{result.remover_loads}")


def bench_packing() -> None:
    rng = random.Random(7)
    sizes = [(rng.randint(40, 300), rng.randint(60, 480)) for _ in range(200)]
    start = time.perf_counter()
    tight = pack_tight(sizes, margin=0, max_size=4096)
    tight_s = time.perf_counter() - start
    cell = (max(w for w, _ in sizes), max(h for _, h in sizes))
    grid = pack_grid(cell, [list(range(len(sizes)))], margin=0, max_size=4096)
    pot = pack_tight(sizes, margin=0, max_size=4096, power_of_two=True)
    print(f"  packing 200 mixed sizes (40-300 x 60-480 px): tight {tight.efficiency(sizes):.1%} "
          f"({len(tight.pages)} page, {tight_s:.2f} s) | tight+POT {pot.efficiency(sizes):.1%} | "
          f"grid {grid.efficiency(sizes):.1%} ({len(grid.pages)} pages) | "
          f"tight/grid = {tight.efficiency(sizes) / grid.efficiency(sizes):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rembg-frames", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "src").mkdir()
        specs = make_frames(workdir / "src", args.frames, args.size)
        print(f"Sprite export benchmark: {args.frames} frames of {args.size}x{args.size} px, "
              "character scaled to 256 px, engines godot4+godot3+unity+json")
        for pack in ("grid", "tight"):
            seconds, pages, efficiency, peak = bench_flood(specs, workdir, pack)
            print(f"  flood, --pack {pack}: {seconds:.1f} s, {args.frames / seconds:.1f} frames/s, "
                  f"peak RSS {peak:.0f} MB, {pages} page(s), area efficiency {efficiency:.1%}")
        bench_sessions(specs[: args.rembg_frames], workdir)
        bench_packing()


if __name__ == "__main__":
    main()
