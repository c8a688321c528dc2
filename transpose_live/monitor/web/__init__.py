"""The web view of camera monitoring: a grid of live cameras, each camera's MJPEG stream and events, all
events with snapshots and clips, pushed over one websocket; an HTTP API, Prometheus /metrics, Basic auth.

view.WebView (what the commands start and stop) and config.WebConfig are the entry; sink (the cameras'
output), feeds, hub (JPEG encoding once per frame), recorder + store (events in SQLite), clips, push
(websocket messages); app, api, pages, ws, mjpeg, auth, metrics, server are the HTTP side (FastAPI on
uvicorn, imported only when a view starts). static/ holds the pages. Importing this package loads nothing
heavy (the CLI reads its defaults from config).

May use: monitor, live and everything below it. Never: train, bench, cli, ui.
"""
