"""Would int8 pay on this CPU? OpenVINO/NNCF post-training quantisation of the shipped model, measured.

    pip install nncf          # not a dependency of the project: this tool only
    python tools/measure/measure_int8.py [--mode plain|transformer|mixed] [--calibration-images 120] [--json OUT|-]

Quantises the model's cached ONNX export with NNCF (calibration: up to 4 ground-truth persons per image of
coco128_train, plain and mirrored; training images, never coco_mini), then in one run:
- latency per call, fp32 vs int8 OpenVINO requests alternated (best of 3 rounds of 1.5 s) at batch 1, 4, 8;
- coco_mini keypoint AP with ground-truth and SSD boxes (>= 0.3, the live threshold; flip test), the same estimator
  with the int8 request swapped in for the fp32 one.
The issue's bar for shipping int8: AP within 0.01 of fp32 and faster. Data: ../shared/data beside the checkout
(or TRANSPOSE_LIVE_DATA).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from report import emit_report

DATA = Path(os.environ.get("TRANSPOSE_LIVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def calibration_crops(estimator, n_images: int) -> list[np.ndarray]:
    """The model's inputs for up to 4 labelled persons per coco128_train image, plain and mirrored."""
    import cv2

    from transpose_live.train.evaluate import gt_boxes, load_coco

    coco = load_coco(DATA / "coco128_train" / "person_keypoints.json")
    crops = []
    for img_id in sorted(coco.imgs)[:n_images]:
        image = cv2.imread(str(DATA / "coco128_train" / "images" / coco.imgs[img_id]["file_name"]))
        boxes, _ = gt_boxes(coco, img_id)
        if len(boxes):   # the estimator's own crop path: the same inputs it feeds the model live
            x = estimator.crop_inputs(estimator.prepare(image, boxes[:4])).numpy()
            for one in x:
                crops += [one[None], np.ascontiguousarray(one[None, ..., ::-1])]
    return crops


def latency_ms(request, x: np.ndarray, seconds: float = 1.5) -> float:
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        request.infer({0: x})
        n += 1
    return (time.perf_counter() - t0) / n * 1000


class SwappedRequest:
    """The estimator's backend call served by a given OpenVINO request (heatmaps only)."""

    def __init__(self, request):
        self.request = request

    def __call__(self, x, attention: bool = False):
        import torch

        self.request.infer({0: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return torch.from_numpy(np.array(self.request.get_output_tensor(0).data)), None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("plain", "transformer", "mixed"), default="transformer",
                    help="NNCF preset: plain (symmetric, every conv/matmul), transformer (ModelType.TRANSFORMER), "
                         "mixed (QuantizationPreset.MIXED)")
    ap.add_argument("--calibration-images", type=int, default=120)
    ap.add_argument("--threads", type=int, default=None, help="default: torch's thread count (the cores)")
    ap.add_argument("--json", default=None, help="also write the report as JSON (- for stdout)")
    args = ap.parse_args(argv)
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        print(f"error: {exc.name} is not installed (pip install nncf openvino)", file=sys.stderr)
        return 2
    import torch

    from transpose_live.model.backends.export import cached_onnx
    from transpose_live.pose.estimator import PoseEstimator
    from transpose_live.train.evaluate import coco_eval, predict_coco

    threads = args.threads or torch.get_num_threads()
    est = PoseEstimator("default", device="cpu", backend="openvino")
    h, w = est.config.image_size
    path = cached_onnx(est.model, False)
    crops = calibration_crops(est, args.calibration_images)
    kw = {"subset_size": len(crops)}
    if args.mode == "transformer":
        kw["model_type"] = nncf.ModelType.TRANSFORMER
    elif args.mode == "mixed":
        kw["preset"] = nncf.QuantizationPreset.MIXED
    core = ov.Core()
    t0 = time.perf_counter()
    quantised = nncf.quantize(core.read_model(str(path)), nncf.Dataset(crops), **kw)
    report = {"mode": args.mode, "calibration_crops": len(crops), "quantise_s": round(time.perf_counter() - t0, 1),
              "threads": threads, "openvino": ov.__version__, "nncf": nncf.__version__}
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_PRECISION_HINT": "f32"}
    requests = {"fp32": core.compile_model(core.read_model(str(path)), "CPU", config).create_infer_request(),
                "int8": core.compile_model(quantised, "CPU", config).create_infer_request()}
    rng = np.random.default_rng(0)
    for batch in (1, 4, 8):
        x = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
        best = {k: float("inf") for k in requests}
        for _ in range(3):   # alternated rounds: the two see the same machine load
            for k, r in requests.items():
                r.infer({0: x})
                best[k] = min(best[k], latency_ms(r, x))
        report[f"b{batch}_ms"] = {k: round(v, 2) for k, v in best.items()}
        report[f"b{batch}_int8_speedup"] = round(best["fp32"] / best["int8"], 2)
        print(f"batch {batch}: fp32 {best['fp32']:.1f} ms, int8 {best['int8']:.1f} ms "
              f"({report[f'b{batch}_int8_speedup']}x)", file=sys.stderr)
    ann, images = DATA / "coco_mini" / "person_keypoints.json", DATA / "coco_mini" / "images"
    for k, r in requests.items():
        est.backend = SwappedRequest(r)
        for boxes in ("gt", "ssd"):
            # SSD boxes at the live threshold (0.3), as the docs/benchmarks.md table was measured
            results = predict_coco(est, ann, images, detector=boxes, flip=True, progress=False,
                                   detector_min_score=0.3 if boxes == "ssd" else None)
            report[f"AP_{boxes}_{k}"] = round(coco_eval(ann, results)["AP"], 4)
    for boxes in ("gt", "ssd"):
        report[f"AP_{boxes}_drop"] = round(report[f"AP_{boxes}_fp32"] - report[f"AP_{boxes}_int8"], 4)
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
