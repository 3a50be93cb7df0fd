"""Web UI benchmark: a round of N candidates on the curation page, and the keep/reject round trip.

    python benchmarks/ui_speed.py [--candidates 200] [--size 512] [--curated 40] [--trials 10]

A workspace on the tiny model; one bootstrap step generates the round, whose candidates are then
scaled to --size px (keeping their PNG chunks: view, provenance), as real candidates are. A real
uvicorn server on loopback, requests over HTTP. Prints side by side:
  1. the first view of the round: ranking by the assist (cached after) and thumbnails made;
  2. after thumbnails exist: the page's HTML, HTML + every thumbnail, and Chromium loading the
     page (navigation to `load`, every visible picture decoded) — target under 1 s;
  3. keep/reject round trip (POST, JSON back with the new coverage) with --curated images of
     --size px already in curated/ — target under 100 ms — against `curate --keep`'s function
     with its dataset snapshot (what a click would cost if it made a version).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _ms(values: list[float]) -> str:
    values = sorted(values)
    return f"median {1000 * statistics.median(values):7.1f} ms · worst {1000 * values[-1]:7.1f} ms"


def scale_candidates(folder: Path, size: int) -> int:
    from PIL import Image, PngImagePlugin

    n = 0
    for path in folder.glob("*.png"):
        if path.name == "contact-sheet.png":
            continue
        with Image.open(path) as im:
            info = PngImagePlugin.PngInfo()
            for k, v in im.info.items():
                if isinstance(v, str):
                    info.add_text(k, v)
            big = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        big.save(path, pnginfo=info)
        n += 1
    return n


def build(root: Path, candidates: int, size: int, curated: int):  # type: ignore[no-untyped-def]
    import torch
    from conftest import build_ui_workspace

    from lorastrap.models.tiny import build_tiny_model

    torch.set_num_threads(1)
    model = build_tiny_model(root / "tiny", "sd15", seed=0)
    ws = build_ui_workspace(root / "ws", model, candidates=candidates)
    scale_candidates(ws.candidates_dir("kitsune", 1), size)
    from PIL import Image

    for i in range(curated):  # a curated set of imported pictures of real size
        Image.effect_noise((size, size), 40 + i).convert("RGB").save(ws.curated_dir("kitsune") / f"hand-{i:02d}.png")
    return ws


def serve(ws):  # type: ignore[no-untyped-def]
    import uvicorn

    from lorastrap.ui.app import create_app
    from lorastrap.ui.security import Guard

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(ws, Guard.for_bind("127.0.0.1", port), run_worker=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", app.state.guard.csrf_token, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--curated", type=int, default=40)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()

    import re

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="lorastrap-ui-bench-"))
    try:
        t0 = time.perf_counter()
        ws = build(tmp, args.candidates, args.size, args.curated)
        print(f"workspace: {args.candidates} candidates of {args.size} px, {args.curated} curated "
              f"({time.perf_counter() - t0:.0f} s to build)")
        base, csrf, server = serve(ws)
        client = httpx.Client(base_url=base, timeout=120)
        url = "/c/kitsune/curate?round=1"

        t = time.perf_counter()
        html = client.get(url).text
        first_html = time.perf_counter() - t
        thumbs = [u.replace("&amp;", "&") for u in re.findall(r'src="(/thumb/[^"]+)"', html)]
        assert len(thumbs) == args.candidates, len(thumbs)
        t = time.perf_counter()
        for u in thumbs:
            client.get(u).raise_for_status()
        first_thumbs = time.perf_counter() - t
        print("\n1. first view of the round")
        print(f"   page (ranks the round, cached after)   {1000 * first_html:8.0f} ms")
        print(f"   {len(thumbs)} thumbnails made               {1000 * first_thumbs:8.0f} ms")

        page, full = [], []
        for _ in range(args.trials):
            t = time.perf_counter()
            client.get(url).raise_for_status()
            page.append(time.perf_counter() - t)
            for u in thumbs:
                client.get(u).raise_for_status()
            full.append(time.perf_counter() - t)
        print(f"\n2. after thumbnails exist ({args.trials} trials)")
        print(f"   HTML of the page                        {_ms(page)}")
        print(f"   HTML + all {len(thumbs)} thumbnails            {_ms(full)}")
        browser_times = browser_load(base + url, args.trials)
        if browser_times:
            print(f"   Chromium: navigation → load, visible pictures decoded  {_ms(browser_times)}")

        names = sorted(p.name for p in ws.candidates_dir("kitsune", 1).glob("*.png") if p.name != "contact-sheet.png")
        trips = []
        for i in range(args.trials * 3):
            name = names[i % len(names)]
            for action, extra in (("keep", {}), ("undo", {"to": "open"}), ("reject", {}), ("undo", {"to": "open"})):
                t = time.perf_counter()
                r = client.post(f"/c/kitsune/{action}", data={"round": 1, "name": name, **extra},
                                headers={"accept": "application/json", "x-csrf-token": csrf})
                trips.append(time.perf_counter() - t)
                r.raise_for_status()
        from lorastrap.method.candidates import unkeep
        from lorastrap.method.curation import curate

        synced = []
        for i in range(max(3, args.trials // 2)):
            path = ws.candidates_dir("kitsune", 1) / names[i]
            t = time.perf_counter()
            curate(ws, "kitsune", keep=[path])  # the CLI's keep: copy + dataset snapshot
            synced.append(time.perf_counter() - t)
            unkeep(ws, "kitsune", 1, names[i])
        print(f"\n3. keep / reject / undo round trip with {args.curated} curated images of {args.size} px")
        print(f"   UI click (POST, JSON with coverage)     {_ms(trips)}   ({len(trips)} requests)")
        print(f"   curate --keep with snapshot, per image  {_ms(synced)}")
        print(f"   ratio (median)                          {statistics.median(synced) / statistics.median(trips):7.1f}×")
        server.should_exit = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def browser_load(url: str, trials: int) -> list[float]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("   (playwright not installed: no browser measurement)")
        return []
    times = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        except Exception as exc:
            print(f"   (Chromium did not start: {str(exc).splitlines()[0]})")
            return []
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)  # warm the browser's own caches of the static files once
        for _ in range(trials):
            page.goto("about:blank")
            t = time.perf_counter()
            page.goto(url, wait_until="load")
            page.wait_for_function("() => Array.from(document.images).filter(i => i.loading !== 'lazy' || "
                                   "i.getBoundingClientRect().top < innerHeight).every(i => i.complete)")
            times.append(time.perf_counter() - t)
        browser.close()
    return times


if __name__ == "__main__":
    main()
