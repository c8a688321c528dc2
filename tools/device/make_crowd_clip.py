"""Make a 1080p 30 fps crowd clip from vtest.avi: four copies tiled 2x2, each from another moment.

    python tools/device/make_crowd_clip.py ../shared/data/videos/vtest.avi out/crowd_1080p.mp4 [--seconds 10]

vtest.avi is 768x576 at 10 fps with ~6 walkers per frame; the 2x2 tile (1536x1152, 4:3) is scaled to
1440x1080 and centred on a black 1920x1080 canvas (people keep their proportions; `--stretch` fills the
width instead). The tiles start `--offset` seconds apart so the four quarters show different people and
poses (about 20 persons per frame). Each source frame is shown 3 times to reach 30 fps (the source has
only 10 distinct frames a second; the pipeline's per-frame work is the same). H.264 (libx264, yuv420p)
written with PyAV; OpenCV can read it back (the GPU machine's check decodes it with cv2).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 1920, 1080, 30


def read_frames(path: str, starts: list[int], count: int) -> list[list[np.ndarray]]:
    """For each start frame, `count` BGR frames from it on (wrapping round at the end of the file);
    one pass over the file that keeps only the frames asked for."""
    import av

    with av.open(path) as box:
        total = box.streams.video[0].frames or 0
    if total <= 0:
        raise SystemExit(f"error: {path} does not say how many frames it has")
    wanted = {(s + i) % total for s in starts for i in range(count)}
    kept: dict[int, np.ndarray] = {}
    with av.open(path) as box:
        for index, frame in enumerate(box.decode(video=0)):
            if index in wanted:
                kept[index] = frame.to_ndarray(format="bgr24")
    if not kept:
        raise SystemExit(f"error: no video frames in {path}")
    last = max(kept)
    return [[kept.get((s + i) % total, kept[last]) for i in range(count)] for s in starts]


def tile(quarters: list[np.ndarray], stretch: bool) -> np.ndarray:
    """Four frames -> one (1080, 1920, 3) frame: 2x2 grid scaled to the height (or to the whole frame)."""
    top = np.concatenate(quarters[:2], axis=1)
    grid = np.concatenate([top, np.concatenate(quarters[2:], axis=1)], axis=0)   # (2h, 2w, 3)
    if stretch:
        return cv2.resize(grid, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    w = round(grid.shape[1] * HEIGHT / grid.shape[0])
    canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    x0 = (WIDTH - w) // 2
    canvas[:, x0:x0 + w] = cv2.resize(grid, (w, HEIGHT), interpolation=cv2.INTER_AREA)
    return canvas


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="vtest.avi (or any video)")
    ap.add_argument("out", help="output .mp4")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (default 10)")
    ap.add_argument("--offset", type=float, default=17.0, help="seconds between the tiles' start times")
    ap.add_argument("--crf", type=int, default=26, help="x264 quality (lower = larger file)")
    ap.add_argument("--stretch", action="store_true", help="fill 1920x1080 instead of keeping proportions")
    args = ap.parse_args(argv)
    import av

    with av.open(args.source) as box:
        src_fps = float(box.streams.video[0].average_rate or 10)
    repeat = max(1, round(FPS / src_fps))
    n_src = int(np.ceil(args.seconds * FPS / repeat))
    step = int(round(args.offset * src_fps))
    tiles = read_frames(args.source, [k * step for k in range(4)], n_src)
    n_out = int(round(args.seconds * FPS))
    with av.open(args.out, "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS, 1))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(args.crf), "preset": "veryfast"}
        for i in range(n_out):
            frame = tile([t[i // repeat] for t in tiles], args.stretch)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    print(f"wrote {args.out}: {n_out} frames {WIDTH}x{HEIGHT} at {FPS} fps "
          f"({args.seconds:g} s; each of {n_src} source frames x{repeat})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
