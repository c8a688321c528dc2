"""The ASGI application: pages, /static, the API, /metrics and /ws, all behind Basic auth when a password
is set. FastAPI on Starlette: typed routes, the API described at /docs (behind the same password), and
Starlette's StaticFiles, which refuses paths outside its folder. The API is described at /openapi.json."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from transpose_live.monitor.web.api import api_router
from transpose_live.monitor.web.auth import BasicAuth
from transpose_live.monitor.web.pages import STATIC, pages_router
from transpose_live.monitor.web.state import WebState
from transpose_live.monitor.web.ws import tick, ws_router


def build_app(state: WebState):
    """The app for uvicorn (wrapped in BasicAuth when the config has a password)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        ticker = asyncio.create_task(tick(state))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    # no /docs: FastAPI's Swagger page loads its scripts from a CDN, and the view must work offline
    app = FastAPI(title="transpose-live monitor", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(pages_router(state))
    app.include_router(api_router(state))
    app.include_router(ws_router(state))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    config = state.config
    if config.password:
        return BasicAuth(app, config.user, config.password)
    return app


__all__ = ["build_app"]
