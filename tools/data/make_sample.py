"""Cut samples/pedestrians.mp4 from OpenCV's vtest.avi (see samples/README.md for source and license).

    python tools/data/make_sample.py ../shared/data/videos/vtest.avi samples/pedestrians.mp4

Decodes with PyAV (transpose_live.media.sources.FileSource) and encodes H.264 yuv420p with libx264
(transpose_live.media.sinks.VideoWriter, CRF 23, preset "slow" for a small file); the frames keep their
timestamps, shifted so the clip starts at 0. The defaults (60 s to 65 s) pick a stretch where people
walk close to the camera.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run from a checkout without installing

from transpose_live.media.sinks import VideoWriter  # noqa: E402
from transpose_live.media.sources import FileSource  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="vtest.avi (OpenCV sample data)")
    parser.add_argument("output", help="the clip to write, e.g. samples/pedestrians.mp4")
    parser.add_argument("--start", type=float, default=60.0, help="first second to keep (default 60)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to keep (default 5)")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality, lower is better (default 23)")
    args = parser.parse_args(argv)

    with FileSource(args.source, start=args.start, end=args.start + args.duration) as source:
        width, height = source.size
        with VideoWriter(args.output, width, height, fps=source.fps, time_base=source.time_base,
                         crf=args.crf, preset="slow") as writer:
            for frame in source:
                writer.write(frame.image, frame.timestamp)
        count = writer.frames_written
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output}: {count} frames {width}x{height}, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
