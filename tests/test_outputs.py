"""Where outputs go: regular files atomically, streams (stdout, FIFOs, devices) directly and never
replaced, live JSON Lines in place line by line; a reader that goes away ends a run cleanly."""

from __future__ import annotations

import json
import os
import stat
import threading

import numpy as np
import pytest

from transpose_live.errors import OutputClosed, TransposeLiveError
from transpose_live.media.sinks import JsonlWriter, OutputTarget, VideoWriter, check_outputs, is_stream_path
from transpose_live.types import FrameResult, Pose


def result(i: int) -> FrameResult:
    pose = Pose(np.full((17, 2), 10.0 + i, np.float32), np.full(17, 0.5, np.float32), (0, 0, 20, 40), 1.0, 1)
    return FrameResult(i, i / 10, [pose], (64, 48))


def test_stream_paths_are_told_apart(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    regular = tmp_path / "a.jsonl"
    regular.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(regular)
    assert is_stream_path("-") and is_stream_path("/dev/stdout") and is_stream_path("/dev/null")
    assert is_stream_path(fifo)
    assert not is_stream_path(regular) and not is_stream_path(link) and not is_stream_path(tmp_path / "new")


def test_regular_file_appears_only_when_finished(tmp_path):
    path = tmp_path / "p.jsonl"
    writer = JsonlWriter(path)
    writer.write(result(0))
    assert not path.exists()                                   # a reader never sees half a file
    writer.close()
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [0]
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]   # no temporary file left


def test_symlinked_output_keeps_the_link(tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with JsonlWriter(link) as writer:
        writer.write(result(3))
    assert link.is_symlink() and json.loads(target.read_text())["frame"] == 3


def test_fifo_is_written_directly_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(open(fifo).read().splitlines()))
    reader.start()
    with JsonlWriter(fifo) as writer:
        for i in range(5):
            writer.write(result(i))
    reader.join(5)
    assert [json.loads(line)["frame"] for line in got] == list(range(5))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_live_json_lines_are_readable_while_running(tmp_path):
    path = tmp_path / "live.jsonl"
    writer = JsonlWriter(path, live=True)
    writer.write(result(0))
    writer.write(result(1))
    assert len(path.read_text().splitlines()) == 2            # tail -f sees each frame as it is written
    writer.abort()                                            # after a failure a live file keeps its lines
    assert len(path.read_text().splitlines()) == 2


def test_stdout_gets_lines_as_they_come(capsys):
    writer = JsonlWriter("-")
    writer.write(result(7))
    assert json.loads(capsys.readouterr().out)["frame"] == 7
    writer.close()


def test_a_closed_reader_is_output_closed(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    opened = threading.Event()

    def read_one_line_and_leave():
        with open(fifo) as f:
            opened.set()
            f.readline()

    reader = threading.Thread(target=read_one_line_and_leave)
    reader.start()
    writer = JsonlWriter(fifo)
    with pytest.raises(OutputClosed):
        for i in range(10_000):        # the pipe buffer fills once the reader has gone
            writer.write(result(i))
    reader.join(5)


def test_videos_need_files_and_outputs_are_checked_first(tmp_path):
    with pytest.raises(TransposeLiveError, match="must be a file"):
        VideoWriter("/dev/stdout", 64, 48)
    with pytest.raises(TransposeLiveError, match="--out - is not possible"):
        check_outputs(out="-")
    with pytest.raises(TransposeLiveError, match="different outputs"):
        check_outputs(json_out=tmp_path / "a.json", coco_json=tmp_path / "a.json")
    with pytest.raises(TransposeLiveError, match="refusing to overwrite the input"):
        check_outputs(json_out=tmp_path / "in.mp4", inputs=[tmp_path / "in.mp4"])
    with pytest.raises(TransposeLiveError, match="does not exist"):
        check_outputs(json_out=tmp_path / "no" / "a.jsonl")
    check_outputs(json_out="-", coco_json=tmp_path / "c.json")
    assert list(tmp_path.iterdir()) == []                     # the checks leave nothing behind
    assert OutputTarget("/dev/null", "x").direct


def test_a_reader_gone_ends_the_pipeline_cleanly_and_finishes_the_other_outputs(tmp_path):
    """`... --json - | head -3`: the run stops like stop(), the video is still finished and playable."""
    from transpose_live.live.pipeline import Pipeline
    from transpose_live.live.spec import RunSpec

    class Gone:
        needs_image = False

        def __init__(self):
            self.lines = 0

        def write_frame(self, image, result):
            if self.lines == 3:
                raise OutputClosed("stdout: closed by its reader after 3 lines")
            self.lines += 1

        def close(self):
            raise OutputClosed("stdout: closed by its reader")

    class Frames:
        is_live = False

        def __init__(self):
            self.i = 0

        def __iter__(self):
            return self

        def __next__(self):
            from transpose_live.media.sources import Frame

            if self.i >= 200:
                raise StopIteration
            self.i += 1
            return Frame(np.zeros((48, 64, 3), np.uint8), self.i - 1, (self.i - 1) / 10)

    class OnePerson:
        def estimate(self, image, boxes, box_scores=None, attention=False):
            return [Pose(np.full((17, 2), 20.0, np.float32), np.full(17, 0.9, np.float32), (0, 0, 64, 48))]

    class Whole:
        def detect(self, image):
            from transpose_live.detect import Detections

            return Detections(np.array([[0, 0, 64, 48]]), np.array([1.0]))

    video = VideoWriter(tmp_path / "v.mp4", 64, 48, fps=10)
    stats = Pipeline(Frames(), RunSpec(), [video, Gone()], estimator=OnePerson(), detector=Whole()).run()
    assert stats.stopped and stats.stop_reason == "output closed"
    assert 3 <= stats.frames_processed < 200
    assert (tmp_path / "v.mp4").stat().st_size > 0             # finished under its name


def test_a_video_for_a_source_of_unknown_size_opens_at_the_first_frame(tmp_path):
    """A stream still connecting when the run starts has no size yet: the video takes the first frame's."""
    import av

    from transpose_live.media.sinks import open_outputs

    class Connecting:
        size, fps, time_base, path = (0, 0), 10.0, None, None

    (video,) = open_outputs(Connecting(), out=tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []                   # nothing yet
    for i in range(3):
        video.write_frame(np.zeros((48, 64, 3), np.uint8), result(i))
    video.close()
    with av.open(str(tmp_path / "v.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (64, 48)
    (empty,) = open_outputs(Connecting(), out=tmp_path / "e.mp4")
    empty.close()
    assert not (tmp_path / "e.mp4").exists()
