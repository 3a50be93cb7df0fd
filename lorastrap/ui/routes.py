"""Pages and actions: each handler parses the request, calls one library function, answers.

Actions answer JSON to the page's script (`Accept: application/json`) and a redirect back to the
page for a plain form post, so every action also works with JavaScript off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lorastrap.kernel.errors import UserError
from lorastrap.ui.security import csrf_protected

MAX_UPLOAD = 64 * 1024 * 1024


def _ws(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.ws


protected = csrf_protected(lambda request: request.app.state.guard)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


def back(request: Request, fallback: str, data: dict[str, Any] | None = None) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": True, **(data or {})})
    target = request.headers.get("referer") or fallback
    # only ever back to this server's own pages
    return RedirectResponse(target if target.startswith(str(request.base_url)) else fallback, 303)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)


def _int(value: Any, what: str, low: int = 0, high: int = 1_000_000) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UserError(f"{what} must be a whole number (got {value!r})") from None
    if not low <= number <= high:
        raise UserError(f"{what} must be between {low} and {high} (got {number})")
    return number


# -- pages ---------------------------------------------------------------------------------------
async def characters(request: Request) -> Response:
    from lorastrap.ui.pages import characters_page

    return page(request, "characters.html", cards=await call(characters_page, _ws(request)))


async def overview(request: Request) -> Response:
    from lorastrap.ui.pages import overview_page

    data = await call(overview_page, _ws(request), request.path_params["slug"])
    return page(request, "overview.html", tab="overview", slug=data["character"]["slug"], **data)


async def curate_round(request: Request) -> Response:
    from lorastrap.ui.pages import curate_page

    raw = request.query_params.get("round")
    slug = request.path_params["slug"]
    data = await call(curate_page, _ws(request), slug, _int(raw, "round", 1, 10_000) if raw else None)
    return page(request, "curate.html", tab="curate", slug=data["status"].slug, **data)


async def captions(request: Request) -> Response:
    from lorastrap.ui.pages import captions_page

    slug = request.path_params["slug"]
    return page(request, "captions.html", tab="captions", slug=slug, **await call(captions_page, _ws(request), slug))


async def outputs(request: Request) -> Response:
    from lorastrap.ui.pages import outputs_page

    slug = request.path_params["slug"]
    return page(request, "outputs.html", tab="outputs", slug=slug, **await call(outputs_page, _ws(request), slug))


async def coverage_json(request: Request) -> Response:
    from lorastrap.ui.pages import coverage

    return JSONResponse(await call(coverage, _ws(request), request.path_params["slug"]))


# -- actions -------------------------------------------------------------------------------------
@protected
async def edit_tags(request: Request) -> Response:
    from lorastrap.characters import edit_tags as edit
    from lorastrap.tags import ROLES

    slug = request.path_params["slug"]
    form = await request.form()
    role = str(form.get("role", "identity"))
    if role not in ROLES:
        raise UserError(f"unknown tag role {role!r}; use one of {', '.join(ROLES)}")
    text = str(form.get("tags", ""))
    result = await call(edit, _ws(request), slug, "set", [text] if text.strip() else [], role)
    return back(request, f"/c/{quote(slug)}#tags", {"role": role, "tags": result})


async def _candidate_action(request: Request, state: str | None) -> Response:
    from lorastrap.method.candidates import set_candidate_state
    from lorastrap.ui.pages import coverage

    ws, slug = _ws(request), request.path_params["slug"]
    form = await request.form()
    round_no, name = _int(form.get("round"), "round", 1, 10_000), str(form.get("name", ""))
    state = state or str(form.get("to", ""))  # undo: back to the state the page remembers
    before = await call(set_candidate_state, ws, slug, round_no, name, state)
    return back(request, f"/c/{quote(slug)}/curate?round={round_no}",
                {"name": name, "state": state, "before": before, "coverage": await call(coverage, ws, slug)})


@protected
async def keep(request: Request) -> Response:
    return await _candidate_action(request, "kept")


@protected
async def reject(request: Request) -> Response:
    return await _candidate_action(request, "rejected")


@protected
async def undo(request: Request) -> Response:
    return await _candidate_action(request, None)


@protected
async def caption(request: Request) -> Response:
    from lorastrap.method.curated_edit import write_caption

    slug = request.path_params["slug"]
    form = await request.form()
    text = await call(write_caption, _ws(request), slug, str(form.get("name", "")), str(form.get("caption", "")))
    return back(request, f"/c/{quote(slug)}/captions", {"caption": text})


@protected
async def import_image(request: Request) -> Response:
    import tempfile
    from pathlib import Path

    from lorastrap.method.curated_edit import import_image as do_import

    ws, slug = _ws(request), request.path_params["slug"]
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD:
        raise UserError(f"upload over {MAX_UPLOAD // 2**20} MiB; scale the image down")
    form = await request.form()
    upload = form.get("image")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise UserError("choose an image file to import")
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise UserError(f"upload over {MAX_UPLOAD // 2**20} MiB; scale the image down")
    with tempfile.TemporaryDirectory(dir=ws.state_dir) as tmp:
        source = Path(tmp) / Path(upload.filename).name.replace("/", "_")
        source.write_bytes(data)
        target = await call(do_import, ws, slug, source, upload.filename)
    return back(request, f"/c/{quote(slug)}/captions", {"name": target.name})


@protected
async def run_step(request: Request) -> Response:
    from lorastrap.jobs.manage import jobs_add

    ws, slug = _ws(request), request.path_params["slug"]
    form = await request.form()
    raw = str(form.get("auto_curate") or "").strip()
    payload = {"auto_curate": _int(raw, "auto-curate", 1, 1000)} if raw else {}
    job = await call(jobs_add, ws, "bootstrap", character=slug, payload=payload)
    runner = request.app.state.runner
    if runner is not None:
        runner.wake()
    return back(request, f"/c/{quote(slug)}#job", {"job": job["id"]})


@protected
async def cancel_job(request: Request) -> Response:
    from lorastrap.jobs.manage import jobs_cancel

    job = await call(jobs_cancel, _ws(request), _int(request.path_params["job_id"], "job id", 1))
    return back(request, f"/c/{quote(job['character'] or '')}#job" if job["character"] else "/", {"job": job["id"]})


ROUTES = [
    Route("/", characters),
    Route("/c/{slug}", overview),
    Route("/c/{slug}/curate", curate_round),
    Route("/c/{slug}/captions", captions),
    Route("/c/{slug}/outputs", outputs),
    Route("/c/{slug}/coverage", coverage_json),
    Route("/c/{slug}/tags", edit_tags, methods=["POST"]),
    Route("/c/{slug}/keep", keep, methods=["POST"]),
    Route("/c/{slug}/reject", reject, methods=["POST"]),
    Route("/c/{slug}/undo", undo, methods=["POST"]),
    Route("/c/{slug}/caption", caption, methods=["POST"]),
    Route("/c/{slug}/import", import_image, methods=["POST"]),
    Route("/c/{slug}/run", run_step, methods=["POST"]),
    Route("/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
]
