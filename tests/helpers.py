"""What several test modules share: paths, small data makers, fakes of the pipeline's parts, a real mosquitto
broker. Fixtures live in conftest.py; test modules import these names from here, never from each other."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from transpose_live.detect import Detections
from transpose_live.media.sources import (
    Frame,
)
from transpose_live.model.config import PRESETS, get_config
from transpose_live.types import Pose

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSPOSE_LIVE_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test (with the reason) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {Path('shared').joinpath(*parts)} beside the checkout (absent here)")
    return path


def synthetic_clip(path: Path, frames: int = 12, size: tuple[int, int] = (96, 64), fps: int = 10) -> Path:
    """A small H.264 clip of moving colour blocks (PyAV)."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            image = np.zeros((h, w, 3), np.uint8)
            image[:, (4 * i) % w:(4 * i) % w + 16] = (40 * i % 255, 120, 200)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def main_runner(monkeypatch, capture, command: str):
    """run(args) -> (exit code, stdout, stderr) of `transpose-live COMMAND ARGS` through cli.app:main, as
    the console script runs it; `capture` is pytest's capsys or capfd."""
    import sys

    from transpose_live.cli import app as app_module

    def run(args):
        monkeypatch.setattr(sys, "argv", ["transpose-live", command, *map(str, args)])
        code = 0
        try:
            app_module.main()
        except SystemExit as stop:
            code = stop.code
        out = capture.readouterr()
        return code, out.out, out.err

    return run


def wait_until(predicate, timeout: float, step: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass (then one last look)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()



# ---- from test_sources.py
W, H = 160, 120


def picture(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Frame i: grey background, a 20x16 white block at the top, x = 4*i."""
    image = np.full((height, width, 3), 60, np.uint8)
    image[:16, 4 * i: 4 * i + 20] = 255
    return image


def block_index(image: np.ndarray) -> int:
    """Which picture(i) this (decoded, upright) image is: from the block's left edge."""
    cols = np.nonzero(image[:16, :, :].mean(axis=(0, 2)) > 160)[0]
    return int(round(cols.min() / 4))


def make_video(path: Path, n: int = 30, fps: int = 10, codec: str = "libx264", audio: str | None = None,
               sample_rate: int = 22050, pts: list[int] | None = None, time_base: Fraction | None = None,
               rotation: tuple[int, bool, bool] | None = None) -> Path:
    """A small synthetic video: n frames W x H; optional audio (a 440 Hz sine as long as the video),
    explicit pts in time_base (variable frame rate), and a display matrix (degrees, hflip, vflip)."""
    options = {"movflags": "+faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", container_options=options) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        if time_base is not None:
            video.codec_context.time_base = time_base
            video.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation[0], hflip=rotation[1], vflip=rotation[2])
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=sample_rate, layout="mono")
        written = 0
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(picture(i), format="bgr24")
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            for packet in video.encode(frame):
                out.mux(packet)
            while sound is not None and written < (i + 1) * sample_rate // fps:
                t = (np.arange(1024) + written) / sample_rate
                samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = sample_rate, written, Fraction(1, sample_rate)
                for packet in sound.encode(chunk):
                    out.mux(packet)
                written += 1024
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            for packet in sound.encode(None):
                out.mux(packet)
    return path


# ---- from test_ssd_openvino.py


def sample_frames(count: int = 6) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(REPO / "samples" / "pedestrians.mp4"))
    frames = []
    for i in range(count * 8):
        ok, frame = cap.read()
        if not ok:
            break
        if i % 8 == 0:
            frames.append(frame)
    cap.release()
    assert len(frames) == count
    return frames


def assert_same_detections(a, b):
    """Same number of boxes, each matched to one within half a pixel and 1e-4 in score (near-equal scores
    may come out in either order)."""
    assert len(a) == len(b)
    used = set()
    for box, score in zip(a.boxes, a.scores):
        diff = np.abs(b.boxes - box).max(axis=1)
        j = int(np.argmin(np.where([k in used for k in range(len(b))], np.inf, diff)))
        assert diff[j] < 0.5 and abs(b.scores[j] - score) < 1e-4, (box, score, b.boxes[j], b.scores[j])
        used.add(j)


# ---- from test_pipeline.py


BOX = (40.0, 10.0, 60.0, 100.0)      # where the fake detector finds the one person


def tagged(i: int) -> np.ndarray:
    image = np.full((H, W, 3), 60, np.uint8)
    image[0, 0, 0], image[0, 0, 1] = i % 256, i // 256
    return image


def tag(image: np.ndarray) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


class ListSource:
    """An in-memory source: n frames, optionally live (each read waits `period` s, like a camera)."""

    def __init__(self, n: int, live: bool = False, period: float = 0.0, fail_at: int | None = None):
        self.n, self.is_live, self.period, self.fail_at = n, live, period, fail_at
        self.produced = -1          # index of the newest frame handed out
        self.fps, self.size, self.time_base, self.path = 25.0, (W, H), None, None

    def __iter__(self):
        return self

    def __next__(self) -> Frame:
        i = self.produced + 1
        if i >= self.n:
            raise StopIteration
        if self.fail_at == i:
            raise RuntimeError("camera unplugged")
        if self.period:
            time.sleep(self.period)
        self.produced = i
        return Frame(image=tagged(i), index=i, timestamp=i / 25.0)


def stick_pose(box, score: float) -> Pose:
    """17 joints spread over the box (head at the top, feet at the bottom)."""
    x, y, w, h = box
    ys = y + h * np.linspace(0.08, 0.92, 17)
    xs = x + w * (0.35 + 0.3 * (np.arange(17) % 2))
    return Pose(keypoints=np.stack([xs, ys], 1).astype(np.float32), scores=np.full(17, score, np.float32),
                box=tuple(float(v) for v in box))


class FakeEstimator:
    """Poses on whatever boxes it gets; `delay` seconds per call; `lost(frame, box)` → an unconfident pose;
    `fail_at` raises on that frame. Records (frame, newest frame of the source) per call."""

    config = get_config("tp_m_a4").with_image_size(64, 48)
    device = "cpu"

    def __init__(self, delay=0.0, lost=None, fail_at=None, source=None):
        self.delay, self.lost, self.fail_at, self.source = delay, lost, fail_at, source
        self.calls: list[tuple[int, int]] = []

    def estimate(self, image, boxes, box_scores=None, attention=False):
        i = tag(image)
        self.calls.append((i, self.source.produced if self.source else -1))
        if self.fail_at == i:
            raise RuntimeError("model blew up")
        if self.delay:
            time.sleep(self.delay)
        return [stick_pose(b, 0.05 if self.lost and self.lost(i, b) else 0.9) for b in np.asarray(boxes)]


class CountingDetector:
    """Finds the person at BOX, except on the frames in `empty`; records the frames it ran on."""

    def __init__(self, empty=()):
        self.empty = set(empty)
        self.frames: list[int] = []

    def detect(self, image):
        i = tag(image)
        self.frames.append(i)
        if i in self.empty:
            return Detections()
        return Detections(np.array([BOX], np.float32), np.array([0.9], np.float32))


# ---- from test_tracking.py
# a standing person's joints as fractions of a (w, h) box
TEMPLATE = np.array([
    [0.5, 0.08], [0.45, 0.06], [0.55, 0.06], [0.4, 0.08], [0.6, 0.08],
    [0.3, 0.22], [0.7, 0.22], [0.2, 0.38], [0.8, 0.38], [0.15, 0.52], [0.85, 0.52],
    [0.38, 0.55], [0.62, 0.55], [0.38, 0.75], [0.62, 0.75], [0.38, 0.95], [0.62, 0.95],
])


def person(x: float, y: float, w: float = 40, h: float = 100, arms_up: bool = False, with_box: bool = True) -> Pose:
    kp = TEMPLATE.copy()
    if arms_up:
        kp[7:11, 1] = [0.1, 0.1, -0.05, -0.05]     # elbows and wrists above the head
    kp = (kp * [w, h] + [x, y]).astype(np.float32)
    return Pose(kp, np.full(17, 0.9, np.float32), box=(x, y, w, h) if with_box else None)


# ---- from test_evaluate.py
def make_coco(path, n_images=3, persons_per_image=2, seed=0, size=(160, 120)):
    """A small COCO keypoints json: fully labelled persons, one crowd region and one 0-keypoint person."""
    rng = np.random.default_rng(seed)
    w_img, h_img = size
    images, anns = [], []
    aid = 1
    for i in range(n_images):
        img_id = 1000 + 7 * i          # ids that are not 0..n-1: results must use the json's ids
        images.append({"id": img_id, "file_name": f"img_{i}.png", "width": w_img, "height": h_img})
        for _ in range(persons_per_image):
            bw, bh = rng.uniform(30, 50), rng.uniform(60, 90)
            bx, by = rng.uniform(0, w_img - bw), rng.uniform(0, h_img - bh)
            xs = rng.uniform(bx, bx + bw, 17)
            ys = rng.uniform(by, by + bh, 17)
            kps = np.stack([xs, ys, np.full(17, 2.0)], 1).reshape(-1)
            anns.append({"id": aid, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                         "bbox": [bx, by, bw, bh], "area": bw * bh * 0.6,
                         "num_keypoints": 17, "keypoints": [round(float(v), 2) for v in kps]})
            aid += 1
    # ignored by the protocol: a crowd region and a person without keypoints
    anns.append({"id": aid, "image_id": images[0]["id"], "category_id": 1, "iscrowd": 1,
                 "bbox": [0, 0, 20, 20], "area": 400.0, "num_keypoints": 0, "keypoints": [0] * 51})
    anns.append({"id": aid + 1, "image_id": images[-1]["id"], "category_id": 1, "iscrowd": 0,
                 "bbox": [100, 10, 15, 70], "area": 900.0, "num_keypoints": 0, "keypoints": [0] * 51})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    path.write_text(json.dumps(data))
    return data


def write_images(tmp_path, data):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, info in enumerate(data["images"]):
        shape = (info["height"], info["width"]) if i == 0 else (info["height"], info["width"], 3)
        cv2.imwrite(str(folder / info["file_name"]), np.full(shape, 90, np.uint8))  # first one grayscale
    return folder


# ---- from test_mqtt.py
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """A broker on 127.0.0.1:port; its sessions persist (saved on every change) across kill / start, so a
    subscriber's subscription survives a crash the way a production broker's does."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {folder}/\nautosave_interval 1\nautosave_on_changes true\n"
            f"user {getpass.getuser()}\n")          # as root, stay root (else it cannot write its folder)
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config), "-v"],
                                            stdout=log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: accepting(self.port) or self.process.poll() is not None, 5.0) \
                or self.process.poll() is not None:
            self.kill()
            pytest.fail(f"mosquitto did not start:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


class Subscriber:
    """A test client on transpose-live/# (QoS 1, a persistent session): every message, decoded."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("transpose-live/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the test subscriber did not subscribe"

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload)))

    def on(self, suffix: str) -> list[dict]:
        with self._lock:
            return [m for t, m in self.messages if t.endswith(suffix)]

    def topics(self) -> set[str]:
        with self._lock:
            return {t for t, _ in self.messages}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---- from test_models.py
def preset_of(ref: dict) -> str:
    """The preset whose architecture the reference file describes (HRNet width read off its weights)."""
    cfg, sd = ref["config"], ref["state_dict"]
    backbone = "hrnet_s" if cfg["model_name"] == "transpose_h" else "resnet_s"
    width = sd["transition1.0.0.weight"].shape[0] if backbone == "hrnet_s" else None
    for name, p in PRESETS.items():
        if (p.backbone, p.d_model, p.dim_feedforward, p.n_layers, p.n_heads, p.head) == (
                backbone, cfg["d_model"], cfg["dim_feedforward"], cfg["n_layers"], cfg["n_heads"],
                "conv1x1" if backbone == "hrnet_s" else "deconv") and (width is None or p.hrnet_width == width):
            return name
    raise AssertionError(f"no preset for {cfg}")


# ---- from test_first_use_download.py: a local stand-in for the release hub (TRANSPOSE_LIVE_HUB_URL)
MB = 1024 * 1024


def checkpoint_bytes(preset: str, seed: int) -> bytes:
    """A checkpoint file's bytes with the preset's keys and shapes, random values (a released file's stand-in)."""
    import io  # deferred: torch and the model load only for the tests that serve checkpoints

    import torch  # deferred: as above

    from transpose_live.model.transpose import create_model  # deferred: as above

    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(create_model(preset).state_dict(), buf)
    return buf.getvalue()


class HubHandler(BaseHTTPRequestHandler):
    """Serves `files` by name under any prefix. /cut/: closes the connection half way through the body;
    /slow/: sends the body in 1 MB pieces, `slow_s` seconds apart; /fail/: HTTP 500 (the server is broken)."""

    files: dict[str, bytes] = {}
    requests: list[str] = []
    slow_s = 0.05

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        if self.path.startswith("/fail/"):
            self.send_error(500, "Internal Server Error")
            return
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/cut/"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True        # the server goes away mid-file
            return
        step = MB if self.path.startswith("/slow/") else len(body)
        for start in range(0, len(body), step):
            self.wfile.write(body[start:start + step])
            if step == MB:
                time.sleep(self.slow_s)

    def log_message(self, *args):  # keep pytest output clean
        pass


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):   # a client that gave up is not an error here
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_hub() -> Iterator[str]:
    """HubHandler on 127.0.0.1 (a free port) in a daemon thread; yields its base URL."""
    httpd = HubServer(("127.0.0.1", 0), HubHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---- from test_live_staleness.py
class ScriptedStream:
    """A live stream with its own connection (pipeline.StreamEvents) played from a script, in the capture
    thread: ("frames", n, period) yields n tagged frames `period` s apart; ("lost", down) reports
    stream_lost, waits `down` s and reports stream_back; ("stall", s) waits s seconds with nothing said (a
    frozen camera not noticed yet). `captured[i]` is when frame i was handed out (time.monotonic());
    `back_at` when the last stream_back was reported."""

    is_live = True

    def __init__(self, script):
        self.script = list(script)
        self.on_event = None
        self.reconnects = 0
        self.captured: dict[int, float] = {}
        self.back_at: float | None = None
        self.fps, self.size, self.time_base, self.path = 50.0, (W, H), None, None
        self._frames = self._play()

    def _play(self):
        i = 0
        for step, *args in self.script:
            if step == "frames":
                n, period = args
                for _ in range(n):
                    time.sleep(period)
                    self.captured[i] = time.monotonic()
                    yield Frame(image=tagged(i), index=i, timestamp=i / self.fps)
                    i += 1
            elif step == "lost":
                self.on_event({"event": "stream_lost", "reason": "end of stream", "frames": i})
                time.sleep(args[0])
                self.reconnects += 1
                self.back_at = time.monotonic()
                self.on_event({"event": "stream_back", "down_s": args[0], "reconnects": self.reconnects})
            else:
                time.sleep(args[0])

    def __iter__(self):
        return self

    def __next__(self) -> Frame:
        return next(self._frames)

    def close(self) -> None:
        pass


RAY_MISSING = "needs Ray (pip install 'transpose-live[cluster]'; the dev extra has it)"


def ray_on_loopback() -> str | None:
    """For the `monitor --cluster` tests, at their import: sets what keeps a local Ray on 127.0.0.1 before Ray is
    first imported in this process. The reason those tests must skip when Ray was imported before without it
    (its instance would listen on the network), else None (None too without Ray: they skip on RAY_MISSING)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return None
    from transpose_live.errors import TransposeLiveError
    from transpose_live.monitor.cluster.connect import loopback_environment

    try:
        loopback_environment()
    except TransposeLiveError as exc:
        return str(exc)
    return None
