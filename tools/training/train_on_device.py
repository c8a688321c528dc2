#!/usr/bin/env python3
"""One training run on the GPU machine (called by tools/training/train_on_device.sh; runs on a CPU too).

Resumes the default model's resumable checkpoint with a new warm-up + cosine schedule over a fixed
time budget, trains on every pack folder given (each pack's manifest weights), evaluates on the val
set (ground-truth boxes, flip test) every --eval-every epochs and at the end, and leaves in --out:

  best.pt           fp16 weights of the best val AP (what would ship as transpose_live/assets/default.pt)
  final.pt          fp16 weights at the end
  resume.pt.part0…  the updated resumable checkpoint, split under the 16 MiB a returned file may have;
                    `cat resume.pt.part* > checkpoints/tp_m_a4_192x144.resume.pt` joins them
  history.json      one entry per epoch (loss, AP when evaluated)
  log.json          the run: config, packs and persons per source, samples/s, best AP, wall times
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PART_BYTES = 15 * 2**20   # a returned file may have at most 16 MiB


def split_file(path: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """path -> path.part0, path.part1, ... of at most part_bytes each (the original is removed)."""
    data = path.read_bytes()
    parts = []
    for i in range(0, max(1, len(data)), part_bytes):
        part = path.with_name(f"{path.name}.part{i // part_bytes}")
        part.write_bytes(data[i:i + part_bytes])
        parts.append(part)
    path.unlink()
    return parts


def parse_source_weights(items: list[str]) -> dict[str, float]:
    """["lspet_a=0.3", ...] -> {"lspet_a": 0.3}; a weight must be a number > 0."""
    from transpose_live.errors import TransposeLiveError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name or not weight > 0:
            raise TransposeLiveError(f"--source-weight wants NAME=W with W > 0, got {item!r}")
        out[name] = weight
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", action="append", type=Path, required=True, help="pack folder (repeat)")
    ap.add_argument("--val", required=True, help="JSON:IMAGES_DIR evaluated with GT boxes and flip")
    ap.add_argument("--resume-from", type=Path, default=ROOT / "checkpoints" / "tp_m_a4_192x144.resume.pt")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=7.0, help="training budget: the cosine runs over it")
    # 1.5e-4 / 100 steps: the 2026-12-04 run's restart at 5e-4 / 300 took the resumed weights from AP 0.324
    # down to 0.257 and 8 minutes did not win it back (docs/TRAINING.md)
    ap.add_argument("--lr", type=float, default=1.5e-4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--workers", type=int, default=14)
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--source-weight", action="append", default=[], metavar="NAME=W",
                    help="override a pack source's manifest weight (repeat), e.g. lspet_a=0.3")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--exclude-ids", type=Path, help="image ids no pack may hold (the packs were checked "
                    "against coco_val2017_ids.txt when built)")
    args = ap.parse_args(argv)

    import torch

    from transpose_live.errors import TransposeLiveError
    from transpose_live.train.data import pack_sources
    from transpose_live.train.loop import DataSpec, TrainConfig, train

    t0 = time.time()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    overrides = parse_source_weights(args.source_weight)
    specs, seen = [], set()
    for folder in args.pack:
        names = set(json.loads((folder / "manifest.json").read_text())["sources"])
        seen |= names
        specs += [DataSpec(str(a), str(i), w)
                  for a, i, w in pack_sources(folder, {k: v for k, v in overrides.items() if k in names})]
    if set(overrides) - seen:
        raise TransposeLiveError(f"--source-weight names no source of the packs: {sorted(set(overrides) - seen)}")
    ann, _, images = args.val.partition(":")
    val = DataSpec.parse(args.val) if images else DataSpec.parse(ann)
    if not args.resume_from.is_file():
        raise TransposeLiveError(f"no resumable checkpoint at {args.resume_from}")
    ck = torch.load(args.resume_from, map_location="cpu", weights_only=True)
    cfg = TrainConfig(
        model="tp_m_a4", image_size=tuple(json.loads(ck["config"])["image_size"]), data=specs, val=val,
        init="none", out_dir=str(args.out), epochs=100000, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup, workers=args.workers, device=args.device, amp=True,
        max_minutes=args.minutes, schedule_minutes=args.minutes, eval_every=args.eval_every,
        exclude_ids=str(args.exclude_ids) if args.exclude_ids else None, restart_schedule=True,
    )
    del ck
    print(f"train_on_device: {len(specs)} sources from {', '.join(map(str, args.pack))}; "
          f"{args.minutes} min on device {args.device}", file=sys.stderr, flush=True)
    t_train = time.time()
    state = train(cfg, resume_from=args.resume_from)
    t_end = time.time()
    out = args.out
    samples = state["step"] * cfg.batch_size
    log = {
        "config": {k: (v if not isinstance(v, list) else [vars(d) if hasattr(d, "__dict__") else d for d in v])
                   for k, v in vars(cfg).items() if k not in ("val",)},
        "val": vars(val),
        "packs": {str(p): json.loads((p / "manifest.json").read_text())["sources"] for p in args.pack},
        "resumed_from": str(args.resume_from.relative_to(ROOT) if args.resume_from.is_relative_to(ROOT)
                            else args.resume_from),
        "epochs": state["epoch"], "steps": state["step"], "samples": samples,
        "samples_per_s": samples / max(1e-6, state["trained_seconds"]),
        "trained_minutes": state["trained_seconds"] / 60, "best_ap": state["best_ap"],
        "last_eval": next((e for e in reversed(state["history"]) if "AP" in e), None),
        "wall_s": {"setup": t_train - t0, "train": t_end - t_train},
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    (out / "log.json").write_text(json.dumps(log, indent=1, default=str))
    last = out / "last.pt"
    if last.is_file():
        (out / "resume.pt").write_bytes(last.read_bytes())
        split_file(out / "resume.pt")
        last.unlink()
    (out / "train_config.json").unlink(missing_ok=True)    # in log.json; keeps the returned files <= 8
    print(f"train_on_device: {state['epoch']} epochs, {samples} samples "
          f"({log['samples_per_s']:.0f}/s), best AP {state['best_ap']:.4f}; files in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from transpose_live.errors import TransposeLiveError

    try:
        sys.exit(main())
    except TransposeLiveError as exc:   # a bad option or a missing pack: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
