"""fp16 CUDA vs fp32 CPU heatmaps for every preset (random weights, fixed seed): max |diff| / heatmap peak.

Run on a machine with CUDA: python tools/check_fp16.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json

import torch

from transpose_live.model import create_model
from transpose_live.model.config import PRESETS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs CUDA"
    rows = []
    for name in PRESETS:
        torch.manual_seed(0)
        model = create_model(name).eval()
        # non-trivial BatchNorm statistics so the check exercises realistic activations
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        x = torch.randn(args.batch, 3, *model.config.image_size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            ref, ref_maps = model(x, return_attention=True)
            gpu = model.cuda().half()
            fast = gpu(x.cuda().half()).float().cpu()
            slow, maps = gpu(x.cuda().half(), return_attention=True)
        peak = ref.abs().amax(dim=(1, 2, 3), keepdim=True)       # the heatmap peak of each crop
        rel_fast = float(((fast - ref).abs() / peak).max())
        rel_slow = float(((slow.float().cpu() - ref).abs() / peak).max())
        attn = max(float((m.float().cpu() - r).abs().max()) for m, r in zip(maps, ref_maps))
        rows.append({"preset": name, "max_rel_diff_fast": rel_fast, "max_rel_diff_attention": rel_slow,
                     "max_attention_diff": attn, "ok": max(rel_fast, rel_slow) <= 5e-3})
        print(f"{name:10} fast {rel_fast:.2e}  attention-path {rel_slow:.2e}  attn maps {attn:.2e}  "
              f"{'OK' if rows[-1]['ok'] else 'FAIL'}", flush=True)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
