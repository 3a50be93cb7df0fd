"""Files and streams: workspace files (checked paths), thumbnails, LoRAs by registry id, job
progress as JSON and as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lorastrap.ui.routes import _int, _ws, call
from lorastrap.ui.security import resolve_inside

CACHE_LONG = "private, max-age=31536000, immutable"  # URLs carry ?v=<mtime,size>
EVENT_EVERY_S = 0.5


def _headers(request: Request) -> dict[str, str]:
    return {"cache-control": CACHE_LONG if request.query_params.get("v") else "no-cache"}


async def workspace_file(request: Request) -> Response:
    path = resolve_inside(_ws(request).root, request.path_params["path"])
    headers = _headers(request)
    if path.suffix.lower() == ".html":  # a report page: its own sandboxed origin, no scripts
        headers["content-security-policy"] = "sandbox; default-src 'self' data: 'unsafe-inline'"
    return FileResponse(path, headers=headers)


async def thumb(request: Request) -> Response:
    from lorastrap.images import is_image_name
    from lorastrap.kernel.errors import UserError
    from lorastrap.ui.thumbs import thumbnail

    ws, rel = _ws(request), request.path_params["path"]
    path = resolve_inside(ws.root, rel)
    if not is_image_name(path):
        raise UserError(f"{rel}: not an image")
    out = await call(thumbnail, ws.cache_dir, rel, path)
    return FileResponse(out, media_type="image/webp", headers=_headers(request))


async def lora_file(request: Request) -> Response:
    from lorastrap.ui.pages import lora_download

    path, name = await call(lora_download, _ws(request), _int(request.path_params["lora_id"], "LoRA id", 1))
    return FileResponse(path, filename=name, media_type="application/octet-stream")


def _job(request: Request) -> dict:  # type: ignore[type-arg]
    from lorastrap.jobs import queue as jobs
    from lorastrap.ui.progress import job_view

    ws = _ws(request)
    return job_view(ws, jobs.get_job(request.app.state.reg, _int(request.path_params["job_id"], "job id", 1)))


async def job_json(request: Request) -> Response:
    return JSONResponse(await call(_job, request))


async def job_events(request: Request) -> Response:
    """`text/event-stream`: the job's view whenever it changes, until it is finished."""
    first = await call(_job, request)  # a wrong id fails here, as a plain error

    async def stream() -> AsyncIterator[str]:
        last, view, quiet = None, first, 0
        while True:
            text = json.dumps(view, default=str)
            if text != last:
                yield f"data: {text}\n\n"
                last, quiet = text, 0
            elif (quiet := quiet + 1) % 30 == 0:
                yield ": still here\n\n"  # keeps proxies from closing an idle stream
            if view["finished"] or await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_EVERY_S)
            view = await call(_job, request)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


ROUTES = [
    Route("/file/{path:path}", workspace_file),
    Route("/thumb/{path:path}", thumb),
    Route("/lora/{lora_id}", lora_file),
    Route("/jobs/{job_id}", job_json),
    Route("/jobs/{job_id}/events", job_events),
]
