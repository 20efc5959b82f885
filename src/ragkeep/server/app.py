"""The FastAPI application: middleware (Host check, CORS, auth), routes, the web page, the
offline API docs, and the lifespan that loads the model and drains the job queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from ragkeep import __version__
from ragkeep.keep import Keep
from ragkeep.server import errors
from ragkeep.server.request_ids import RequestIds
from ragkeep.server.routes import admin, health, library, observability, query
from ragkeep.server.routes import logging as log_routes
from ragkeep.server.security import (
    BodyLimit,
    HostCheck,
    TokenAuth,
    allowed_host_names,
)
from ragkeep.server.state import ServerState

log = logging.getLogger("ragkeep.server")
STATIC = Path(str(resources.files("ragkeep.server") / "static"))
# The page's own policy, also sent as a header (which, unlike the meta tag, covers
# frame-ancestors: no other site may frame the page).
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
JOB_STOP_TIMEOUT_S = 30.0  # a shutdown waits this long for the running job to stop


def create_app(keep: Keep, *, bind_host: str = "127.0.0.1") -> FastAPI:
    state = ServerState.create(keep)
    cfg = state.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load the model off the event loop: /healthz answers at once, /readyz once loaded.
        threading.Thread(target=_load_model, args=(state,), daemon=True).start()
        state.keep.observer.start_sampling()
        yield
        if not state.jobs.stop(JOB_STOP_TIMEOUT_S):
            log.warning("the running job did not stop within %.0f s", JOB_STOP_TIMEOUT_S)

    app = FastAPI(
        title="ragkeep",
        version=__version__,
        description="Search and ask your documents. Errors are JSON: "
        '`{"error": {"code", "message"}}`.',
        lifespan=lifespan,
        docs_url=None,  # served below from the swagger-ui-bundle package, not a CDN
        redoc_url=None,
    )
    app.state.ragkeep = state
    errors.install(app)
    routers = (query, library, admin, health, observability, log_routes)
    for routes in routers:
        app.include_router(routes.router)
    upload_limit = int(cfg.upload_max_mb * 1024 * 1024) + library.MULTIPART_OVERHEAD
    app.add_api_route(
        library.UPLOAD_ROUTE,
        library.upload,
        methods=["POST"],
        status_code=202,
        tags=["library"],
        summary="Upload files and index them",
    )
    _mount_page(app)
    _mount_docs(app)
    # Added innermost first: a request gets its id, then meets the Host check, the body
    # limit, CORS, then auth.
    token = cfg.token.get_secret_value() if cfg.token else None
    app.add_middleware(TokenAuth, token=token)
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        BodyLimit,
        limits={library.UPLOAD_ROUTE: upload_limit},
        default=cfg.body_max_kb * 1024,
    )
    app.add_middleware(HostCheck, allowed=allowed_host_names(bind_host, cfg.allowed_hosts))
    app.add_middleware(RequestIds)
    return app


def _load_model(state: ServerState) -> None:
    try:
        state.keep.embedder()
    except Exception as exc:
        state.model_error = str(exc)
        log.error("the embedding model could not be loaded: %s", exc)
    else:
        state.model_ready.set()


def _mount_page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


def _mount_docs(app: FastAPI) -> None:
    import swagger_ui_bundle

    app.mount(
        "/docs/assets",
        StaticFiles(directory=Path(str(swagger_ui_bundle.swagger_ui_path))),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="ragkeep API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )
