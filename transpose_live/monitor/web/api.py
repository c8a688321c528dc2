"""The HTTP API under /api (documented in docs/web.md) and /metrics. Camera names and event ids are looked
up in the view's tables, never joined into a path: anything else, `..` included, is a 404."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from transpose_live.monitor.web.clips import ClipUnavailable
from transpose_live.monitor.web.feeds import CameraFeed
from transpose_live.monitor.web.hub import JpegStream
from transpose_live.monitor.web.metrics import make_registry, metrics_text
from transpose_live.monitor.web.mjpeg import MjpegResponse
from transpose_live.monitor.web.state import WebState

MAX_EVENTS = 1000
NO_STORE = {"Cache-Control": "no-store"}


def api_router(state: WebState) -> APIRouter:
    router = APIRouter()
    registry = make_registry(state)

    def camera(name: str) -> tuple[CameraFeed, JpegStream]:
        found = state.camera(name)
        if found is None:
            raise HTTPException(404, f"no camera called {name!r}")
        return found

    def event(event_id: str) -> dict:
        found = state.store.get(int(event_id)) if event_id.isdigit() and len(event_id) < 19 else None
        if found is None:
            raise HTTPException(404, f"no event {event_id!r}")
        return found

    @router.get("/api/cameras")
    def cameras() -> list[dict]:
        return [feed.row() for feed in state.cameras()]

    @router.get("/api/cameras/{name}")
    def one_camera(name: str) -> dict:
        return camera(name)[0].row()

    @router.get("/api/cameras/{name}/latest.jpg")
    async def latest(name: str) -> Response:
        _, stream = camera(name)
        jpeg = await run_in_threadpool(stream.latest)
        if jpeg is None:
            raise HTTPException(404, f"camera {name!r} has sent no frame yet")
        return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)

    @router.get("/api/cameras/{name}/mjpeg")
    def mjpeg(name: str, attention: bool = False) -> Response:
        _, stream = camera(name)
        return MjpegResponse(stream, overlay=attention)

    @router.get("/api/events")
    def events(camera: str | None = None, type: str | None = None, since: str | None = None,
               before: int | None = None, limit: int = Query(100, ge=1, le=MAX_EVENTS)) -> list[dict]:
        return state.store.query(camera=camera, kind=type, since=_since(since), before_id=before, limit=limit)

    @router.get("/api/events/{event_id}")
    def one_event(event_id: str) -> dict:
        return event(event_id)

    @router.get("/api/events/{event_id}/snapshot.jpg")
    def snapshot(event_id: str) -> Response:
        found = event(event_id)
        path = state.store.snapshot_file(found["id"])
        if found["snapshot"] is None or not path.is_file():
            raise HTTPException(404, f"event {found['id']} has no snapshot (no frame yet, or it could not be kept)")
        return FileResponse(path, media_type="image/jpeg")

    @router.get("/api/events/{event_id}/clip.mp4")
    async def clip(event_id: str) -> Response:
        found = event(event_id)
        if found["clip"] is None or state.clips is None:
            raise HTTPException(404, f"camera {found['camera']!r} was not recording: event {found['id']} has no clip")
        out = state.store.clip_file(found["id"])
        try:
            path = await run_in_threadpool(state.clips.cut, found["camera"], found["epoch"], out)
        except ClipUnavailable as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except OSError as exc:
            raise HTTPException(503, f"cannot write the clip: {exc.strerror or exc}") from None
        state.store.set_bytes(found["id"], "clip_bytes", path.stat().st_size)
        return FileResponse(path, media_type="video/mp4")

    @router.get("/api/stats")
    def stats() -> dict:
        feeds = state.cameras()
        model = state.model_stats() if state.model_stats is not None else None
        return {"uptime_s": round(time.time() - state.started, 1), "cameras": len(feeds),
                "live": sum(feed.state == "live" for feed in feeds),
                "mjpeg_viewers": sum(state.streams[f.name].viewers for f in feeds),
                "pages": state.push.clients,
                "events_kept": sum(state.store.counts().values()),
                "events_persistent": state.store.persistent,
                "model": None if model is None else {
                    key: getattr(model, key) for key in ("forwards", "requests", "crops", "mean_batch", "busy_s")
                    if hasattr(model, key)}}

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        return Response(metrics_text(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


def _since(text: str | None) -> float | None:
    """Epoch seconds or an ISO 8601 time (a Z or offset; none: UTC)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"since must be epoch seconds or an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


__all__ = ["api_router"]
