"""A real RTSP server on 127.0.0.1 for tests: GStreamer's gst-rtsp-server, run in a child process by a
system python3 that has python3-gi. The server itself lives in the package (transpose_live.bench.soak_server:
the soak command runs it too); this module adds what tests need: `require()` skips the calling test, with
the reason, when no server can run here.

    with RtspServer(paths=("/cam", "/door"), user="admin", password="s3cret") as server:
        url = server.url("/cam")          # rtsp://admin:s3cret@127.0.0.1:PORT/cam
        server.kill()                     # the camera dies (SIGKILL: its sockets are reset)
        server.start()                    # ... and comes back on the same port
        server.freeze(); server.thaw()    # it hangs (SIGSTOP: sockets open, nothing sent), then resumes

Every path serves the same live test pattern (a bouncing ball, H.264 over RTP, one shared media per path);
other paths answer 404, and with user/password every request needs HTTP basic authentication (else 401).
Debian packages: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly (videotestsrc, rtph264pay, x264enc)."""

from __future__ import annotations

import signal
import sys

from transpose_live.bench.soak_server import (
    SERVER,
    RtspServer,
    RtspServerError,
    available,
    free_port,
    system_python,
)

__all__ = ["SERVER", "RtspServer", "RtspServerError", "available", "free_port", "require", "system_python"]


def require() -> None:
    """Skip the calling test, with the reason, when no test server can run here."""
    import pytest

    ok, why = available()
    if not ok:
        pytest.skip(why)


if __name__ == "__main__":
    # `python tests/rtsp_server.py [PORT] [/PATH ...]`: a local test camera to try `rtsp` and `monitor` on
    args = sys.argv[1:]
    port = int(args.pop(0)) if args and args[0].isdigit() else 8554
    ok, why = available()
    if not ok:
        sys.exit(f"cannot start the test RTSP server: {why}")
    with RtspServer(paths=tuple(args) or ("/cam",), port=port) as served:
        for p in served.paths:
            print(served.url(p), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
