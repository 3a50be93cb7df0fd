"""`lorastrap ui` in a real browser: Playwright driving the system Chromium against a real uvicorn
server on a workspace built on the tiny model (one per module).

Screenshots go to tmp; with LORASTRAP_SCREENSHOTS=docs/ui they are the ones docs/ui.md shows.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LORASTRAP_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as exc:  # a Chromium that cannot start here: skipped, never faked
            pytest.skip(f"Chromium did not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(ui_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """A real server with its worker thread on a copy of the module's workspace."""
    import uvicorn

    from lorastrap.ui.app import create_app
    from lorastrap.ui.security import Guard
    from lorastrap.workspace import load_workspace

    root = tmp_path_factory.mktemp("ui-browser") / "ws"
    shutil.copytree(ui_template, root)
    ws = load_workspace(root)
    port = _free_port()
    app = create_app(ws, Guard.for_bind("127.0.0.1", port), run_worker=True)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the UI server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ws
    srv.should_exit = True
    thread.join(60)


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("LORASTRAP_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shot(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("networkidle")  # lazy pictures in view have loaded
    page.screenshot(path=str(path), full_page=True)


def _page(browser, errors: list[str], **context):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
    page = ctx.new_page()
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    return ctx, page


def test_keyboard_curation_then_the_next_step_runs_to_the_end(browser, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.method.step import character_status

    base, ws = server
    shots = _shots(tmp_path)
    errors: list[str] = []
    ctx, page = _page(browser, errors)
    page.goto(f"{base}/")
    _shot(page, shots / "characters.png")

    page.goto(f"{base}/c/kitsune/curate")
    assert page.locator(".cand").count() == 6
    total = page.locator('[data-cov="total"]')
    assert total.inner_text() == "4"
    bar_before = page.locator("svg.bar rect.seg").evaluate_all("rs => rs.reduce((s, r) => s + +r.getAttribute('width'), 0)")

    for _ in range(3):  # K keeps the focused candidate and moves on
        page.keyboard.press("k")
    page.wait_for_function("() => document.querySelectorAll('.cand.kept').length === 3")
    kept = sorted(p.name for p in ws.curated_dir("kitsune").glob("*.png"))
    assert len(kept) == 3
    assert sorted(page.locator(".cand.kept").evaluate_all("cs => cs.map(c => c.dataset.name)")) == kept
    page.wait_for_function("() => document.querySelector('[data-cov=\"total\"]').textContent === '7'")
    bar_after = page.locator("svg.bar rect.seg").evaluate_all("rs => rs.reduce((s, r) => s + +r.getAttribute('width'), 0)")
    assert bar_after > bar_before

    # X rejects, U undoes it: the file goes aside and comes back
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.wait_for_function("() => document.querySelectorAll('.cand.rejected').length === 1")
    name = page.locator(".cand.rejected").get_attribute("data-name")
    assert (ws.candidates_dir("kitsune", 1) / ".rejected" / name).is_file()
    page.keyboard.press("u")
    page.wait_for_function("() => document.querySelectorAll('.cand.rejected').length === 0")
    assert (ws.candidates_dir("kitsune", 1) / name).is_file()
    page.locator(".cand").nth(3).click()
    _shot(page, shots / "curate.png")

    page.goto(f"{base}/c/kitsune/captions")
    assert page.locator(".badge", has_text="kept").count() == 3
    _shot(page, shots / "captions.png")

    # run the next step from the page: style round 2 trains, its candidates are generated
    page.goto(f"{base}/c/kitsune")
    page.click("#run-form button")
    page.wait_for_selector('[data-job-field="status"]:text("done")', timeout=240_000)
    page.wait_for_load_state("load")
    page.wait_for_selector("svg.tree .node.style >> nth=1", timeout=30_000)  # reloaded: two style rounds
    st = character_status(ws, "kitsune")[0]
    assert (st.stage, st.round) == ("candidates", 2)
    assert len(list(ws.candidates_dir("kitsune", 2).glob("*.png"))) >= 6
    _shot(page, shots / "overview.png")
    page.goto(f"{base}/c/kitsune/outputs")
    _shot(page, shots / "outputs.png")
    ctx.close()
    assert not errors, errors


def test_pages_read_with_javascript_off(browser, server) -> None:  # type: ignore[no-untyped-def]
    base, ws = server
    errors: list[str] = []
    ctx, page = _page(browser, errors, java_script_enabled=False)
    page.goto(f"{base}/c/kitsune")
    assert page.locator("svg.tree .node").count() >= 2  # seed + at least style r1
    assert page.locator(".seed img").count() >= 1
    # every picture on the page loads (thumbnails made on request)
    page.wait_for_load_state("networkidle")
    broken = page.locator("img").evaluate_all("is => is.filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0
    page.goto(f"{base}/c/kitsune/curate?round=1")
    assert page.locator(".view-group").count() >= 2
    # a plain form post keeps a candidate too (CSRF token in the form, redirect back)
    card = page.locator(".cand.open").first
    name = card.get_attribute("data-name")
    card.locator("button.keep").click()
    page.wait_for_load_state("load")
    assert (ws.curated_dir("kitsune") / name).is_file()
    assert page.locator(f'.cand.kept[data-name="{name}"]').count() == 1
    ctx.close()
    assert not errors, errors
