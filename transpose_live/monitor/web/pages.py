"""The pages: plain HTML, JS and CSS shipped in static/ (no build step, nothing from a CDN: it works
offline). / is the grid of cameras, /camera/<name> one camera live with its events, /events all events."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

from transpose_live.monitor.web.state import WebState

STATIC = Path(__file__).resolve().parent / "static"


def page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


def pages_router(state: WebState) -> APIRouter:
    router = APIRouter()

    @router.get("/")
    def grid() -> Response:
        return page("index.html")

    @router.get("/camera/{name}")
    def camera(name: str) -> Response:
        if state.camera(name) is None:
            raise HTTPException(404, f"no camera called {name!r}")
        return page("camera.html")

    @router.get("/events")
    def events() -> Response:
        return page("events.html")

    return router


__all__ = ["pages_router", "STATIC"]
