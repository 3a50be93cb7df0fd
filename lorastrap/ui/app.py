"""The ASGI app of `lorastrap ui`: routes, templates, static files, error pages, the worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from lorastrap.kernel.errors import Conflict, NotFound, PreconditionFailed, UserError
from lorastrap.ui.security import Guard, GuardMiddleware
from lorastrap.workspace import Workspace

HERE = Path(__file__).parent
STATUS = {NotFound: 404, Conflict: 409, PreconditionFailed: 409}


def _templates(ws: Workspace, guard: Guard) -> Jinja2Templates:
    from lorastrap.ui.thumbs import version_tag

    templates = Jinja2Templates(directory=str(HERE / "templates"))

    def file_url(rel: str | None, thumb: bool = False) -> str | None:
        """URL of a workspace file (None for files outside it: those are not served)."""
        if not rel or Path(rel).is_absolute():
            return None
        path = ws.root / rel
        try:
            tag = version_tag(path)
        except OSError:
            return None
        return f"/{'thumb' if thumb else 'file'}/{quote(rel)}?v={tag}"

    templates.env.globals.update(file_url=file_url, csrf=guard.csrf_token, workspace=ws.root,
                                 thresholds=list(ws.config.bootstrap.thresholds))
    return templates


def _error(request: Request, exc: Exception) -> Response:
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": False, "error": str(exc)}, status)
    return request.app.state.templates.TemplateResponse(request, "error.html", {"message": str(exc)},
                                                        status_code=status)


def create_app(ws: Workspace, guard: Guard | None = None, *, run_worker: bool = True) -> Starlette:
    """The app for one workspace. `run_worker`: run the job queue in a thread of this process."""
    from lorastrap.ui import files, routes

    guard = guard or Guard.for_bind("127.0.0.1", 7860)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from lorastrap.ui.runner import WorkerThread

        app.state.runner = WorkerThread(app.state.ws) if run_worker else None
        if app.state.runner is not None:
            app.state.runner.start()
        try:
            yield
        finally:
            if app.state.runner is not None:
                app.state.runner.stop()
            app.state.reg.close()

    app = Starlette(
        routes=[*routes.ROUTES, *files.ROUTES, Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")],
        middleware=[Middleware(GuardMiddleware, guard=guard)],
        exception_handlers={UserError: _error},
        lifespan=lifespan,
    )
    state: Any = app.state
    state.guard, state.runner = guard, None
    state.reg = ws.open_registry()
    state.ws = ws.bound(state.reg)  # every request and job of this server uses this one registry
    state.templates = _templates(ws, guard)
    return app
