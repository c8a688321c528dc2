"""Writers: VideoWriter (H.264, timestamps and audio kept, atomic), JsonlWriter, CocoResultsWriter.
Videos are made in the test (see test_sources.make_video: frame i shows a block at x = 4*i)."""

from __future__ import annotations

import json
import logging
import math
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks import CocoResultsWriter, JsonlWriter, VideoWriter, pick_video_encoder
from transpose_live.media.sources import FileSource
from transpose_live.types import FrameResult, Pose

from helpers import H, W, block_index, make_video, picture


def transcode(src, dst, **source_options) -> list[float]:
    """Read src with FileSource, write every frame to dst with its timestamp and src's audio."""
    timestamps = []
    with FileSource(src, **source_options) as source:
        with VideoWriter(dst, *source.size, fps=source.fps, time_base=source.time_base,
                         audio_from=source) as writer:
            for frame in source:
                writer.write(frame.image, frame.timestamp)
                timestamps.append(frame.timestamp)
    return timestamps


def streams(path) -> dict:
    with av.open(str(path)) as c:
        return {s.type: s.codec_context.name for s in c.streams}


def audio_seconds(path) -> float:
    """Decoded audio length: samples / rate (the same measure for input and output)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(stream))
        return samples / stream.codec_context.sample_rate


def read_back(path) -> tuple[list[float], list[int], tuple[int, int]]:
    with FileSource(path) as source:
        frames = list(source)
        size = source.size
    return [f.timestamp for f in frames], [block_index(f.image) for f in frames], size


# ---------------------------------------------------------------------------------------------------------
# video + audio round trips


@pytest.mark.parametrize("src_name, dst_name, audio, rate, in_codec, out_codec", [
    ("in.mp4", "out.mp4", "aac", 22050, "aac", "aac"),                  # copied
    ("in.avi", "out.mp4", "libmp3lame", 22050, "mp3float", "mp3float"),  # copied from AVI into MP4
    ("in.avi", "out.mkv", "ac3", 48000, "ac3", "ac3"),                  # copied into Matroska
    ("in.avi", "out.mp4", "pcm_mulaw", 16000, "pcm_mulaw", "aac"),      # MP4 cannot hold mu-law: AAC
])
def test_round_trip_keeps_frames_timestamps_and_audio(tmp_path, src_name, dst_name, audio, rate, in_codec,
                                                      out_codec):
    codec = "libx264" if src_name.endswith(".mp4") else "mpeg4"
    src = make_video(tmp_path / src_name, codec=codec, audio=audio, sample_rate=rate)
    dst = tmp_path / dst_name
    timestamps = transcode(src, dst)

    assert streams(src)["audio"] == in_codec
    assert streams(dst) == {"video": "h264", "audio": out_codec}
    out_ts, out_blocks, size = read_back(dst)
    assert size == (W, H)
    assert len(out_ts) == len(timestamps) == 30
    assert out_blocks == list(range(30))
    np.testing.assert_allclose(out_ts, timestamps, atol=1e-3)
    assert audio_seconds(dst) == pytest.approx(audio_seconds(src), abs=0.1)     # within one frame
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src_name, dst_name])   # no temp left


def test_variable_frame_rate_survives(tmp_path):
    pts_ms = [0, 40, 100, 110, 300, 333, 400, 650, 700, 1000, 1010, 1200]
    src = make_video(tmp_path / "vfr.mkv", n=len(pts_ms), pts=pts_ms, time_base=Fraction(1, 1000))
    timestamps = transcode(src, tmp_path / "out.mp4")
    out_ts, blocks, _ = read_back(tmp_path / "out.mp4")
    np.testing.assert_allclose(timestamps, np.array(pts_ms) / 1000, atol=1e-6)
    np.testing.assert_allclose(out_ts, timestamps, atol=1e-3)
    assert blocks == list(range(len(pts_ms)))


def test_rotated_input_is_written_upright(tmp_path):
    src = make_video(tmp_path / "rot.mp4", n=4, rotation=(90, False, False))
    transcode(src, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (H, W)
        assert frame.rotation == 0


def test_trimmed_source_starts_output_at_zero_with_audio_cut_alike(tmp_path):
    src = make_video(tmp_path / "in.mp4", audio="aac")
    timestamps = transcode(src, tmp_path / "out.mp4", start=1.0, end=2.5)
    out_ts, blocks, _ = read_back(tmp_path / "out.mp4")
    assert timestamps[0] == pytest.approx(1.0)
    np.testing.assert_allclose(out_ts, np.array(timestamps) - timestamps[0], atol=1e-3)
    assert blocks == list(range(10, 25))
    assert audio_seconds(tmp_path / "out.mp4") == pytest.approx(1.5, abs=0.1)


def test_interrupted_writer_still_leaves_a_playable_file(tmp_path):
    src = make_video(tmp_path / "in.mp4", audio="aac")
    dst = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with FileSource(src) as source, VideoWriter(dst, W, H, fps=10, audio_from=source) as writer:
            for frame in source:
                if frame.index == 12:
                    raise KeyboardInterrupt
                writer.write(frame.image, frame.timestamp)
    out_ts, blocks, _ = read_back(dst)
    assert blocks == list(range(12))
    assert audio_seconds(dst) == pytest.approx(1.2, abs=0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_output_appears_only_when_closed(tmp_path):
    dst = tmp_path / "out.mp4"
    writer = VideoWriter(dst, W, H, fps=10)
    writer.write(picture(0))
    assert not dst.exists()
    assert len(list(tmp_path.iterdir())) == 1           # the hidden temporary file
    writer.close()
    assert dst.exists() and len(list(tmp_path.iterdir())) == 1
    assert read_back(dst)[1] == [0]


def test_timestamps_default_to_index_over_fps_and_stay_increasing(tmp_path):
    dst = tmp_path / "out.mkv"
    with VideoWriter(dst, W, H, fps=5) as writer:
        for i in range(4):
            writer.write(picture(i))
        writer.write(picture(4), timestamp=0.6)         # equal to the one before: nudged forward
    ts, blocks, _ = read_back(dst)
    assert blocks == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(ts[:4], [0, 0.2, 0.4, 0.6], atol=1e-3)
    assert ts[4] > ts[3]


def test_odd_size_is_padded_to_even(tmp_path):
    dst = tmp_path / "odd.mp4"
    with VideoWriter(dst, 161, 121, fps=10) as writer:
        writer.write(picture(1, 161, 121))
    _, blocks, size = read_back(dst)
    assert size == (162, 122) and blocks == [1]


def test_wrong_frame_size_is_refused(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4", W, H, fps=10)
    with pytest.raises(ValueError, match=r"\(120, 160, 3\)"):
        writer.write(np.zeros((10, 10, 3), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_no_frames_no_file(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="transpose_live.media.sinks"):
        VideoWriter(tmp_path / "out.mp4", W, H, fps=10).close()
    assert list(tmp_path.iterdir()) == []
    assert any("no frames" in r.getMessage() for r in caplog.records)


def test_source_without_audio_gives_silent_output(tmp_path):
    src = make_video(tmp_path / "in.mp4", n=5)
    transcode(src, tmp_path / "out.mp4")
    assert streams(tmp_path / "out.mp4") == {"video": "h264"}


def test_h264_encoder_is_found():
    assert pick_video_encoder("h264") in ("libx264", "libopenh264")
    with pytest.raises(TransposeLiveError, match="no encoder"):
        pick_video_encoder("no-such-codec")


# ---------------------------------------------------------------------------------------------------------
# unwritable outputs fail before any work and leave nothing behind


def test_missing_output_folder(tmp_path):
    with pytest.raises(TransposeLiveError, match=r"^cannot write video .*out\.mp4: folder .* does not exist$"):
        VideoWriter(tmp_path / "missing" / "out.mp4", W, H, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    for make in (lambda p: VideoWriter(p, W, H, fps=10), JsonlWriter, CocoResultsWriter):
        with pytest.raises(TransposeLiveError, match="cannot write"):
            make(tmp_path / "file" / "out.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(TransposeLiveError, match="cannot write video"):
            VideoWriter(folder / "out.mp4", W, H, fps=10)
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_unknown_container_and_bad_arguments(tmp_path):
    with pytest.raises(TransposeLiveError, match="unknown container"):
        VideoWriter(tmp_path / "out.notavideo", W, H, fps=10)
    with pytest.raises(TransposeLiveError, match="size must be positive"):
        VideoWriter(tmp_path / "out.mp4", 0, H, fps=10)
    with pytest.raises(TransposeLiveError, match="fps"):
        VideoWriter(tmp_path / "out.mp4", W, H, fps=-1)
    with pytest.raises(TransposeLiveError, match="audio source not found"):
        VideoWriter(tmp_path / "out.mp4", W, H, fps=10, audio_from=tmp_path / "nope.mp4")
    assert list(tmp_path.iterdir()) == []


def test_output_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with JsonlWriter(tmp_path / "r.jsonl") as writer:
            writer.write(FrameResult(index=0, timestamp=0.0))
    finally:
        os.umask(old)
    assert (tmp_path / "r.jsonl").stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------------------------------------------------
# JSON results


def make_pose(offset: float, track_id=None, missing=()) -> Pose:
    keypoints = np.stack([np.arange(17) * 2.0 + offset, np.arange(17) + 50.0], axis=1).astype(np.float32)
    scores = np.linspace(0.5, 0.9, 17).astype(np.float32)
    for j in missing:
        keypoints[j] = np.nan
        scores[j] = np.nan
    return Pose(keypoints=keypoints, scores=scores, box=(offset, 40.0, 40.0, 30.0), box_score=0.8,
                track_id=track_id)


def test_jsonl_one_line_per_frame_with_nan_as_null(tmp_path):
    path = tmp_path / "poses.jsonl"
    results = [
        FrameResult(index=0, timestamp=0.0, poses=[make_pose(10, track_id=1), make_pose(90, track_id=2, missing=(3,))]),
        FrameResult(index=1, timestamp=0.04),
        FrameResult(index=2, timestamp=0.08, poses=[make_pose(12, track_id=1)]),
    ]
    with JsonlWriter(path) as writer:
        for r in results:
            writer.write(r)
        assert not path.exists()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    first, empty, third = (json.loads(line) for line in lines)
    assert (first["frame"], first["timestamp"]) == (0, 0.0)
    assert empty == {"frame": 1, "timestamp": 0.04, "persons": []}
    assert third["frame"] == 2 and [p["id"] for p in third["persons"]] == [1]
    a, b = first["persons"]
    assert a["id"] == 1 and a["box"] == [10.0, 40.0, 40.0, 30.0]
    assert len(a["keypoints"]) == 17 and all(len(k) == 3 for k in a["keypoints"])
    assert a["keypoints"][4] == [18.0, 54.0, pytest.approx(0.6, abs=1e-4)]
    assert a["score"] == pytest.approx(0.8 * 0.7, abs=1e-4)
    assert b["keypoints"][3] == [None, None, None]
    assert b["keypoints"][4][0] == 98.0
    assert "NaN" not in path.read_text()


def test_coco_results_evaluate_perfectly_against_their_own_ground_truth(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    poses = [make_pose(10), make_pose(200, missing=(0, 1))]
    gt = {"images": [{"id": 42, "width": 400, "height": 200}],
          "categories": [{"id": 1, "name": "person"}], "annotations": []}
    for k, pose in enumerate(poses):
        kps = []
        for (x, y), s in zip(pose.keypoints, pose.scores):
            kps += [0, 0, 0] if math.isnan(s) else [float(x), float(y), 2]
        gt["annotations"].append({"id": k + 1, "image_id": 42, "category_id": 1, "iscrowd": 0,
                                  "bbox": list(pose.box), "area": 40.0 * 30.0 * 4, "keypoints": kps,
                                  "num_keypoints": sum(1 for v in kps[2::3] if v)})
    path = tmp_path / "results.json"
    with CocoResultsWriter(path, image_id_fn=lambda r: 42) as writer:
        writer.write(FrameResult(index=0, timestamp=0.0, poses=poses))
    records = json.loads(path.read_text())
    assert [r["image_id"] for r in records] == [42, 42]
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in records)
    assert records[1]["keypoints"][:6] == [0.0] * 6

    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    evaluation = COCOeval(coco, coco.loadRes(str(path)), "keypoints")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def test_coco_default_image_id_is_frame_index(tmp_path):
    path = tmp_path / "r.json"
    with CocoResultsWriter(path) as writer:
        writer.write(FrameResult(index=7, timestamp=0.0, poses=[make_pose(1)]))
        writer.write(FrameResult(index=8, timestamp=0.1))
    assert [r["image_id"] for r in json.loads(path.read_text())] == [7]


def test_json_writers_abort_leaves_nothing(tmp_path):
    from transpose_live.media.sinks import CocoResultsWriter, JsonlWriter
    from transpose_live.types import FrameResult

    for cls, name in ((JsonlWriter, "a.jsonl"), (CocoResultsWriter, "a.json")):
        w = cls(tmp_path / name)
        w.write(FrameResult(index=0, timestamp=0.0))
        w.abort()
        assert list(tmp_path.iterdir()) == []
