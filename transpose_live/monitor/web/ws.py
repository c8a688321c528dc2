"""/ws: the one websocket each page opens. On connect it gets every camera's state; then, as they happen,
new events ({"type": "event"}), state changes ({"type": "camera"}) and once a second all cameras' figures
({"type": "cameras"}: fps, persons, latency). A page never sends anything that matters; its going away is
noticed at once and its queue is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from transpose_live.monitor.web.state import WebState

TICK_S = 1.0


def cameras_message(state: WebState) -> dict:
    return {"type": "cameras", "cameras": [feed.row() for feed in state.cameras()]}


async def tick(state: WebState) -> None:
    """All cameras' figures to every page once a second (run in the server's loop while it serves)."""
    while not state.stopping.is_set():
        await asyncio.sleep(TICK_S)
        if state.push.clients:
            state.push.publish(cameras_message(state))


def ws_router(state: WebState) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws")
    async def updates(websocket: WebSocket) -> None:
        await websocket.accept()
        client = state.push.join(asyncio.get_running_loop())
        gone = asyncio.create_task(_until_closed(websocket))
        try:
            await websocket.send_text(json.dumps(cameras_message(state), default=str))
            while not gone.done() and not state.stopping.is_set():
                message = asyncio.create_task(client.queue.get())
                await asyncio.wait({message, gone}, timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED)
                if not message.done():
                    message.cancel()
                    continue
                await websocket.send_text(message.result())
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass                     # the page went away while we sent
        finally:
            state.push.leave(client)
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gone
            if state.stopping.is_set():
                with contextlib.suppress(Exception):
                    await websocket.close(1001)

    return router


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


__all__ = ["ws_router", "tick", "cameras_message"]
