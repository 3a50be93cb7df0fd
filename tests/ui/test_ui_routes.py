"""`lorastrap ui` routes through Starlette's test client: every page, every action, and the
refusals (CSRF, access token, Host header, paths that leave the workspace, bad uploads)."""

from __future__ import annotations

import io
import os
import re

import pytest
from PIL import Image

pytest.importorskip("httpx", reason="the test client needs httpx (pip install -e .[test])")

from starlette.testclient import TestClient  # noqa: E402

from lorastrap.ui.app import create_app  # noqa: E402
from lorastrap.ui.security import Guard  # noqa: E402

LOCAL = "http://127.0.0.1:7860"
JSON = {"accept": "application/json"}


@pytest.fixture
def client(ui_ws):  # type: ignore[no-untyped-def]
    app = create_app(ui_ws, Guard.for_bind("127.0.0.1", 7860), run_worker=False)
    with TestClient(app, base_url=LOCAL) as c:
        c.ws = ui_ws  # type: ignore[attr-defined]
        c.csrf = app.state.guard.csrf_token  # type: ignore[attr-defined]
        yield c


def _names(ws, round_no: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(p.name for p in ws.candidates_dir("kitsune", round_no).glob("*.png") if p.name != "contact-sheet.png")


def _act(client, action: str, name: str, **extra):  # type: ignore[no-untyped-def]
    return client.post(f"/c/kitsune/{action}", data={"round": 1, "name": name, **extra},
                       headers={**JSON, "x-csrf-token": client.csrf})


def test_every_page_renders_with_the_character(client) -> None:  # type: ignore[no-untyped-def]
    for url, needle in [("/", "Kitsune"), ("/c/kitsune", "Lineage"), ("/c/kitsune/curate", "data-round=\"1\""),
                        ("/c/kitsune/curate?round=1", "view-group"), ("/c/kitsune/captions", "caption"),
                        ("/c/kitsune/outputs", "Download kitsune-style-r1.safetensors")]:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert needle in r.text, url
        assert "default-src 'self'" in r.headers["content-security-policy"]
    curate = client.get("/c/kitsune/curate").text
    assert curate.count('class="cand open"') == 6  # every candidate, grouped by view
    assert client.get("/c/nobody").status_code == 404
    assert client.get("/c/kitsune/curate?round=9").status_code == 404
    cov = client.get("/c/kitsune/coverage").json()
    assert (cov["total"], cov["threshold"]) == (4, 6)


def test_keep_reject_undo_move_files_and_the_coverage(client) -> None:  # type: ignore[no-untyped-def]
    ws = client.ws
    first, second = _names(ws)[:2]
    r = _act(client, "keep", first)
    assert r.status_code == 200 and r.json()["state"] == "kept" and r.json()["before"] == "open"
    assert (ws.curated_dir("kitsune") / first).read_bytes() == (ws.candidates_dir("kitsune", 1) / first).read_bytes()
    assert r.json()["coverage"]["total"] == 5
    # a kept candidate's view counts at once, before any dataset version is made
    view = re.sub(r"-\d+$", "", first.rsplit(".", 1)[0]).replace("-", " ")
    assert r.json()["coverage"]["views"].get(view, 0) >= 1

    r = _act(client, "reject", second)
    assert r.json()["state"] == "rejected"
    assert (ws.candidates_dir("kitsune", 1) / ".rejected" / second).is_file()
    assert second not in _names(ws)
    page = client.get("/c/kitsune/curate").text
    assert f'data-name="{second}" data-state="rejected"' in page  # still shown, greyed

    # undo goes back to the state the page remembers
    assert _act(client, "undo", second, to="open").json()["state"] == "open"
    assert second in _names(ws)
    r = _act(client, "undo", first, to="open")
    assert not (ws.curated_dir("kitsune") / first).exists() and r.json()["coverage"]["total"] == 4
    # rejecting a kept candidate takes it out of curated/ as well
    _act(client, "keep", first)
    _act(client, "reject", first)
    assert not (ws.curated_dir("kitsune") / first).exists()
    # no dataset version per click: the next step (or the watcher) snapshots curated/
    from lorastrap.method.step import character_status

    assert character_status(ws, "kitsune")[0].dataset_version == 1


def test_an_edited_kept_image_is_not_unkept(client) -> None:  # type: ignore[no-untyped-def]
    name = _names(client.ws)[0]
    _act(client, "keep", name)
    kept = client.ws.curated_dir("kitsune") / name
    Image.open(kept).convert("RGB").rotate(90).save(kept)
    r = _act(client, "undo", name, to="open")
    assert r.status_code == 409 and "changed after it was kept" in r.json()["error"]
    assert kept.is_file()


def test_state_changes_need_the_csrf_token(client) -> None:  # type: ignore[no-untyped-def]
    name = _names(client.ws)[0]
    for headers, data in [({}, {"round": 1, "name": name}),
                          ({"x-csrf-token": "wrong"}, {"round": 1, "name": name}),
                          ({}, {"round": 1, "name": name, "csrf": "wrong"})]:
        r = client.post("/c/kitsune/keep", data=data, headers=headers)
        assert r.status_code == 403, r.text
    r = client.post("/c/kitsune/keep", data={"round": 1, "name": name, "csrf": client.csrf},
                    headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert not any(client.ws.curated_dir("kitsune").iterdir())
    # a plain form post (JavaScript off) with the token works and redirects back to the page
    r = client.post("/c/kitsune/keep", data={"round": 1, "name": name, "csrf": client.csrf},
                    headers={"referer": f"{LOCAL}/c/kitsune/curate?round=1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/c/kitsune/curate?round=1")
    assert (client.ws.curated_dir("kitsune") / name).is_file()


def test_paths_outside_the_workspace_are_refused(client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = client.ws
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    os.symlink(secret, ws.root / "characters" / "kitsune" / "link.txt")
    os.symlink(tmp_path, ws.root / "characters" / "kitsune" / "out")
    good = f"characters/kitsune/candidates/r1/{_names(ws)[0]}"
    assert client.get(f"/file/{good}").status_code == 200
    assert client.get(f"/thumb/{good}").headers["content-type"] == "image/webp"
    for bad in ["../secret.txt", "%2e%2e/%2e%2e/etc/passwd", "characters/kitsune/link.txt",
                "characters/kitsune/out/secret.txt", ".lorastrap/registry.sqlite3", "lorastrap.toml/..",
                "characters/../../secret.txt", "/etc/passwd", "characters/kitsune/seed/..%2F..%2F..%2Florastrap.toml"]:
        for route in ("file", "thumb"):
            r = client.get(f"/{route}/{bad}")
            assert r.status_code in (400, 404), (route, bad, r.status_code)
            assert "not yours" not in r.text
    assert client.get("/file/lorastrap.toml").status_code == 400  # may hold a database password
    (ws.curated_dir("kitsune") / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    r = client.get("/thumb/characters/kitsune/curated/broken.png", headers=JSON)
    assert r.status_code == 400 and "not a readable image" in r.json()["error"]
    # names in actions are plain file names
    for name in ["../../lorastrap.toml", "r1/x.png", ".rejected", "..", "a\\b.png"]:
        r = _act(client, "keep", name)
        assert r.status_code in (400, 404), name
    assert client.get("/c/..%2F..%2Fetc").status_code == 404


def test_another_host_needs_the_access_token(ui_ws) -> None:  # type: ignore[no-untyped-def]
    guard = Guard.for_bind("0.0.0.0", 7861)
    assert guard.access_token and guard.access_token in guard.url()
    app = create_app(ui_ws, guard, run_worker=False)
    with TestClient(app, base_url="http://192.0.2.10:7861") as c:
        assert c.get("/").status_code == 401
        assert c.get("/?token=wrong").status_code == 401
        assert c.get("/", headers={"x-lorastrap-token": "wrong"}).status_code == 401
        assert c.get("/", headers={"x-lorastrap-token": guard.access_token}).status_code == 200
        r = c.get(f"/c/kitsune?token={guard.access_token}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/c/kitsune"  # the token leaves the URL
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/c/kitsune").status_code == 200  # the cookie carries it now
        # the token is not a CSRF token
        r = c.post("/c/kitsune/keep", data={"round": 1, "name": _names(ui_ws)[0]})
        assert r.status_code == 403


def test_loopback_answers_only_to_loopback_names(ui_ws) -> None:  # type: ignore[no-untyped-def]
    app = create_app(ui_ws, Guard.for_bind("127.0.0.1", 7860), run_worker=False)
    with TestClient(app, base_url=LOCAL) as c:
        assert c.get("/", headers={"host": "localhost:7860"}).status_code == 200
        assert c.get("/", headers={"host": "[::1]:7860"}).status_code == 200
        assert c.get("/", headers={"host": "rebind.attacker.example:7860"}).status_code == 421


def test_tags_edit_with_the_rules_of_the_tags_command(client) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.characters import edit_tags

    r = client.post("/c/kitsune/tags", data={"role": "identity", "tags": "1girl, Fox_Ears, fox ears,  green eyes "},
                    headers={**JSON, "x-csrf-token": client.csrf})
    assert r.json()["tags"] == ["1girl", "fox ears", "green eyes"]
    assert edit_tags(client.ws, "kitsune", "show") == ["1girl", "fox ears", "green eyes"]
    r = client.post("/c/kitsune/tags", data={"role": "identity", "tags": " , "}, headers={**JSON, "x-csrf-token": client.csrf})
    assert r.status_code == 400 and "no tags given" in r.json()["error"]
    r = client.post("/c/kitsune/tags", data={"role": "boss", "tags": "x"}, headers={**JSON, "x-csrf-token": client.csrf})
    assert r.status_code == 400


def test_captions_are_written_as_sidecars_the_dataset_reads(client) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.method.curation import preview_captions

    ws = client.ws
    name = _names(ws)[0]
    _act(client, "keep", name)
    page = client.get("/c/kitsune/captions").text
    assert f'value="{name}"' in page and "kept" in page
    r = client.post("/c/kitsune/caption", data={"name": name, "caption": "Smile, running,  smile"},
                    headers={**JSON, "x-csrf-token": client.csrf})
    assert r.json()["caption"] == "smile, running"
    sidecar = ws.curated_dir("kitsune") / (name.rsplit(".", 1)[0] + ".txt")
    assert sidecar.read_text() == "smile, running\n"
    row = next(r for r in preview_captions(ws, "kitsune") if r["image"] == name)
    assert row["caption"].endswith("smile, running") and row["caption"].startswith("ktsn")  # trigger put first
    client.post("/c/kitsune/caption", data={"name": name, "caption": ""}, headers={**JSON, "x-csrf-token": client.csrf})
    assert not sidecar.exists()
    r = client.post("/c/kitsune/caption", data={"name": "../lorastrap.toml", "caption": "x"},
                    headers={**JSON, "x-csrf-token": client.csrf})
    assert r.status_code == 400


def _png(size=(96, 96), colour=(200, 40, 40)) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_pass_the_seed_image_checks(client) -> None:  # type: ignore[no-untyped-def]
    ws = client.ws
    h = {**JSON, "x-csrf-token": client.csrf}
    r = client.post("/c/kitsune/import", files={"image": ("../../My Drawing.png", _png())}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "My-Drawing.png"
    assert (ws.curated_dir("kitsune") / "My-Drawing.png").is_file()
    r = client.post("/c/kitsune/import", files={"image": ("My Drawing.png", _png(colour=(1, 2, 3)))}, headers=h)
    assert r.status_code == 409  # never overwrites
    before = sorted(p.name for p in ws.curated_dir("kitsune").iterdir())
    for name, data, why in [("fake.png", b"not an image at all", "not an image"),
                            ("tiny.png", _png((16, 16)), "smaller than"),
                            ("cut.png", _png()[:60], "corrupt")]:
        r = client.post("/c/kitsune/import", files={"image": (name, data)}, headers=h)
        assert r.status_code == 400 and why in r.json()["error"], (name, r.text)
    assert sorted(p.name for p in ws.curated_dir("kitsune").iterdir()) == before
    assert not [p for p in ws.state_dir.iterdir() if p.name.startswith("tmp")]  # upload temp files removed


def test_run_the_next_step_queues_one_bootstrap_job(client) -> None:  # type: ignore[no-untyped-def]
    h = {**JSON, "x-csrf-token": client.csrf}
    r = client.post("/c/kitsune/run", data={}, headers=h)
    assert r.status_code == 409 and "4 of 6 images" in r.json()["error"]
    for name in _names(client.ws)[:2]:
        _act(client, "keep", name)
    r = client.post("/c/kitsune/run", data={}, headers=h)
    job_id = r.json()["job"]
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["kind"], job["status"], job["character"]) == ("bootstrap", "queued", "kitsune")
    assert client.post("/c/kitsune/run", data={}, headers=h).status_code == 409  # one at a time
    assert f'data-job="{job_id}"' in client.get("/c/kitsune").text
    r = client.post(f"/jobs/{job_id}/cancel", data={}, headers=h)
    assert r.status_code == 200
    assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    with client.stream("GET", f"/jobs/{job_id}/events") as stream:  # a finished job: one event, then the end
        body = "".join(stream.iter_text())
    assert body.startswith("data: ") and '"status": "cancelled"' in body
    assert client.get("/jobs/999").status_code == 404
    r = client.post("/c/kitsune/run", data={"auto_curate": "0"}, headers=h)
    assert r.status_code == 400


def test_lora_download_by_registry_id(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/lora/1")
    path = client.ws.loras_dir("kitsune") / "kitsune-style-r1.safetensors"
    assert r.status_code == 200 and r.content == path.read_bytes()
    assert "kitsune-style-r1.safetensors" in r.headers["content-disposition"]
    assert client.get("/lora/99").status_code == 404
    assert client.get("/lora/abc").status_code == 400


def test_thumbnails_are_made_once(client) -> None:  # type: ignore[no-untyped-def]
    rel = f"characters/kitsune/candidates/r1/{_names(client.ws)[0]}"
    assert client.get(f"/thumb/{rel}").status_code == 200
    thumbs = list((client.ws.cache_dir / "thumbs").glob("*.webp"))
    assert len(thumbs) == 1
    made = thumbs[0].stat().st_mtime_ns
    assert client.get(f"/thumb/{rel}?v=1").headers["cache-control"].startswith("private, max-age")
    assert thumbs[0].stat().st_mtime_ns == made


def test_step_tracker_reports_phase_loss_and_eta() -> None:
    import time

    from lorastrap.jobs.kinds import JobProgress, StepTracker

    progress = JobProgress({"id": 1, "attempts": 1}, __import__("pathlib").Path("."), show_bar=False)
    tracker = StepTracker(progress, 10)
    assert progress.snapshot()["phase"] == "training"
    tracker(1, 0.5)
    time.sleep(0.02)
    tracker(2, 0.4)
    snap = progress.snapshot()
    assert (snap["done"], snap["total"], snap["loss"]) == (2, 10, 0.4) and snap["eta_s"] > 0
    tracker(10, 0.3)
    assert progress.snapshot()["phase"] == "finishing" and progress.snapshot()["eta_s"] is None


def test_the_servers_worker_streams_progress_cancels_and_hands_back_on_stop(ui_ws) -> None:  # type: ignore[no-untyped-def]
    """The in-process worker: progress (phase, step, loss) while training, cancel stops it at the
    next step, and stopping the server puts a running step back in the queue."""
    from conftest import wait_until

    from lorastrap.jobs import queue as jobs
    from lorastrap.workspace import CONFIG_NAME, load_workspace

    toml = ui_ws.root / CONFIG_NAME
    toml.write_text(toml.read_text().replace("max_train_steps = 3", "max_train_steps = 5000"))
    ws = load_workspace(ui_ws.root)
    for name in _names(ws)[:2]:
        (ws.curated_dir("kitsune") / name).write_bytes((ws.candidates_dir("kitsune", 1) / name).read_bytes())
    app = create_app(ws, Guard.for_bind("127.0.0.1", 7860), run_worker=True)
    h = {**JSON, "x-csrf-token": app.state.guard.csrf_token}
    with TestClient(app, base_url=LOCAL) as c:
        job_id = c.post("/c/kitsune/run", data={}, headers=h).json()["job"]
        # 3 of 5000 steps: the first step whose percent (one decimal) is above 0.0
        view = wait_until(lambda: (v := c.get(f"/jobs/{job_id}").json())["done"] and v["done"] >= 3 and v, 60)
        assert (view["status"], view["phase"], view["total"]) == ("running", "training", 5000)
        assert view["loss"] is not None and 0 < view["percent"] < 100
        assert c.post(f"/jobs/{job_id}/cancel", data={}, headers=h).status_code == 200
        # the worker notices at its next heartbeat and stops the training between two steps
        wait_until(lambda: app.state.runner.worker._progress is None, 30)
        assert jobs.get_job(app.state.reg, job_id)["status"] == "cancelled"

        second = c.post("/c/kitsune/run", data={}, headers=h).json()["job"]
        wait_until(lambda: (c.get(f"/jobs/{second}").json()["done"] or 0) >= 2, 60)
    # leaving the context stops the server: the running step checkpoints and goes back to the queue
    with ws.open_registry() as reg:
        job = jobs.get_job(reg, second)
    assert job["status"] == "queued" and "resumes from its checkpoint" in job["error"]


def test_outputs_show_sprite_export_previews_and_clash_reports(client) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.export.sprites import SpriteOptions, export_character_sprites
    from registry.models import ClashRun

    ws = client.ws
    summary = export_character_sprites(ws, "kitsune", SpriteOptions(
        engines=("godot4", "json"), out=ws.exports_dir("kitsune") / "sprites",
        source=str(ws.candidates_dir("kitsune", 1)), remover="flood", progress=False))
    # a clash run's row and files as `lorastrap clash` leaves them (the run itself is tested in test_clash_*)
    out = ws.exports_dir("kitsune") / "clash"
    (out / "sheets").mkdir(parents=True)
    Image.new("RGB", (200, 100), (9, 9, 9)).save(out / "sheets" / "watercolor.png")
    (out / "report.html").write_text("<!DOCTYPE html><title>clash</title><script>alert(1)</script>")
    with ws.open_registry() as reg, reg.session() as s:
        s.add(ClashRun(character_id=1, character_lora_id=1, out_dir=ws.rel(out), params={}, summary={"ranking": [
            {"rank": 1, "style": "watercolor", "mean_clash": 0.42, "max_safe_weight": 0.6,
             "advice": "<lora:watercolor:0.6>", "verified": True}]}))
    page = client.get("/c/kitsune/outputs").text
    assert "Export #" in page and "godot4" in page
    preview = ws.rel(summary.preview)
    assert f"/file/{preview}" in page and client.get(f"/file/{preview}").status_code == 200
    assert "watercolor" in page and "&lt;lora:watercolor:0.6&gt;" in page  # escaped, not markup
    assert "/file/characters/kitsune/exports/clash/sheets/watercolor.png" in page
    report = client.get("/file/characters/kitsune/exports/clash/report.html")
    assert report.status_code == 200 and report.headers["content-security-policy"].startswith("sandbox")


def test_the_lineage_picture_marks_the_suggested_final_lora() -> None:
    from lorastrap.ui.lineage_view import lineage_picture

    def node(i: int, kind: str, rnd: int | None, children: list, suggested: bool = False) -> dict:
        return {"id": i, "kind": kind, "round": rnd, "dataset": f"v{i}", "images": 4 * i, "steps": None,
                "final_loss": None, "children": children, "suggested": suggested, "recommended": False}

    tree = {"seed": {"images": 4, "dataset": "v1"},
            "loras": [node(1, "style", 1, [node(2, "style", 2, [node(3, "character", None, [])], suggested=True)])]}
    titles = {n.lora_id: n.title for n in lineage_picture(tree).nodes if n.lora_id}
    assert titles[2].endswith("☆ suggested") and "☆" not in titles[1] + titles[3]
