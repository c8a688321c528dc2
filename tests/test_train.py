"""`train` on a tiny synthetic COCO set: the loss falls, checkpoints resume, the time budget stops it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.train.loop import DataSpec, TrainConfig, joints_mse_loss, train


def _tiny_coco(tmp_path, n_images=4, image_id0=1):
    """Images with a bright stick figure whose joints are labelled."""
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n_images):
        img = np.full((120, 100, 3), 30, np.uint8)
        x0, y0 = 30 + rng.integers(0, 10), 10 + rng.integers(0, 10)
        kps = []
        for j in range(17):
            x, y = x0 + (j % 3) * 15, y0 + (j // 3) * 15
            cv2.circle(img, (int(x), int(y)), 3, (255, 255, 255), -1)
            kps += [float(x), float(y), 2]
        name = f"{image_id0 + i:012d}.jpg"
        cv2.imwrite(str(images_dir / name), img)
        images.append({"id": image_id0 + i, "file_name": name, "width": 100, "height": 120})
        anns.append({"id": i + 1, "image_id": image_id0 + i, "category_id": 1, "iscrowd": 0,
                     "bbox": [x0 - 5.0, y0 - 5.0, 45.0, 100.0], "area": 4500.0, "num_keypoints": 17,
                     "keypoints": kps})
    ann = tmp_path / "person_keypoints.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns,
                               "categories": [{"id": 1, "name": "person"}]}))
    return ann, images_dir


def _cfg(tmp_path, ann, images, **kw):
    base = dict(model="tp_m_a4", image_size=(64, 48), data=[DataSpec(str(ann), str(images))], init="none",
                out_dir=str(tmp_path / "run"), epochs=2, batch_size=4, lr=1e-3, workers=0, device="cpu",
                warmup_steps=1, eval_every=100)
    base.update(kw)
    return TrainConfig(**base)


def test_joints_mse_loss_ignores_zero_weight_joints():
    pred, target = torch.zeros(1, 17, 4, 4), torch.ones(1, 17, 4, 4)
    weight = torch.zeros(1, 17, 1)
    assert float(joints_mse_loss(pred, target, weight)) == 0.0
    weight[0, 3] = 1.0
    assert float(joints_mse_loss(pred, target, weight)) == pytest.approx(0.5 / 17)


def test_train_writes_checkpoints_and_resumes(tmp_path):
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    state = train(_cfg(tmp_path, ann, images, epochs=2))
    run = tmp_path / "run"
    assert state["epoch"] == 2 and state["step"] == 2
    for name in ("last.pt", "final.pt", "history.json"):
        assert (run / name).is_file()
    final = torch.load(run / "final.pt", weights_only=True)
    assert final["reduce.weight"].dtype == torch.float16      # compact export
    resumed = train(_cfg(tmp_path, ann, images, epochs=3), resume=True)
    assert resumed["epoch"] == 3 and resumed["step"] == 3     # continued, not restarted
    assert len(json.loads((run / "history.json").read_text())) == 3


def test_loss_falls_on_a_fixed_set(tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path, n_images=4)
    state = train(_cfg(tmp_path, ann, images, epochs=12, lr=3e-3))
    losses = [e["loss"] for e in state["history"]]
    assert min(losses[-3:]) < losses[0]


def test_time_budget_stops_cleanly(tmp_path):
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    state = train(_cfg(tmp_path, ann, images, epochs=1000, max_minutes=1e-4))
    assert state["epoch"] < 1000
    assert (tmp_path / "run" / "last.pt").is_file()


def test_excluded_image_ids_are_refused(tmp_path):
    ann, images = _tiny_coco(tmp_path, image_id0=139)     # 139 is a COCO val2017 id
    ids = tmp_path / "val_ids.txt"
    ids.write_text("139\n285\n")
    with pytest.raises(TransposeLiveError, match="139|val|exclu"):
        train(_cfg(tmp_path, ann, images, exclude_ids=str(ids)))


def test_data_spec_errors_name_the_path(tmp_path):
    with pytest.raises(TransposeLiveError, match="not found"):
        DataSpec.parse(str(tmp_path / "missing.json"))
    ann, images = _tiny_coco(tmp_path)
    spec = DataSpec.parse(f"{ann}@0.5")
    assert spec.weight == 0.5 and spec.images_dir == str(images)


def test_progress_and_epoch_lines_go_to_stderr(tmp_path, capsys):
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    train(_cfg(tmp_path, ann, images, epochs=2))
    out, err = capsys.readouterr()
    assert out == ""                                          # stdout stays free for results
    assert "epoch=1 step=1 loss=" in err and "epoch=2 step=2 loss=" in err
    last = [line for line in err.splitlines() if line.startswith("train: ")][-1]
    assert "epoch 2/2 step 2 loss" in last and "samples/s" in last


def test_device_is_checked_by_the_shared_resolver(tmp_path):
    ann, images = _tiny_coco(tmp_path)
    with pytest.raises(TransposeLiveError, match="unknown device 'warp-drive'; use auto, cpu, cuda"):
        train(_cfg(tmp_path, ann, images, device="warp-drive"))
    if not torch.cuda.is_available():
        with pytest.raises(TransposeLiveError, match="no usable CUDA device"):
            train(_cfg(tmp_path, ann, images, device="cuda:1"))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_validation_scores_ground_truth_boxes(tmp_path, monkeypatch):
    from transpose_live.train import evaluate

    calls = []

    def fake_predict(estimator, ann_file, images_dir, **kw):
        calls.append((ann_file, kw, estimator.model.training))
        return []

    monkeypatch.setattr(evaluate, "predict_coco", fake_predict)
    monkeypatch.setattr(evaluate, "coco_eval", lambda ann_file, results: {"AP": 0.25})
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    state = train(_cfg(tmp_path, ann, images, epochs=1, val=DataSpec(str(ann), str(images))))
    assert calls == [(str(ann), {"detector": "gt", "flip": True, "progress": False}, False)]
    assert state["best_ap"] == 0.25 and state["history"][-1]["AP"] == 0.25
    assert (tmp_path / "run" / "best.pt").is_file()


def test_validation_runs_the_real_coco_evaluation(tmp_path):
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    state = train(_cfg(tmp_path, ann, images, epochs=1, val=DataSpec(str(ann), str(images))))
    ap = state["history"][-1]["AP"]
    assert isinstance(ap, float) and 0.0 <= ap <= 1.0 and state["best_ap"] == ap
    assert (tmp_path / "run" / "best.pt").is_file()


def test_restart_schedule_keeps_weights_and_counts_from_zero(tmp_path):
    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    first = train(_cfg(tmp_path, ann, images, epochs=2))
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    restarted = train(_cfg(tmp_path, ann, images, epochs=1, out_dir=str(tmp_path / "run2"), restart_schedule=True),
                      resume_from=tmp_path / "run" / "last.pt")
    assert (restarted["epoch"], restarted["step"]) == (1, 1)              # a new schedule, not epoch 3
    assert restarted["previous_runs"] == [{"epoch": 2, "step": 2, "trained_seconds": first["trained_seconds"],
                                           "best_ap": -1.0}]
    ck2 = torch.load(tmp_path / "run2" / "last.pt", weights_only=True)
    assert ck2["previous_runs"] == restarted["previous_runs"]
    # one step away from the resumed weights, not from a fresh init: the weights barely moved
    moved = (ck2["model"]["reduce.weight"] - ck["model"]["reduce.weight"]).abs().max()
    fresh = train(_cfg(tmp_path, ann, images, epochs=1, out_dir=str(tmp_path / "run3"), seed=1))
    ck3 = torch.load(tmp_path / "run3" / "last.pt", weights_only=True)
    assert moved < (ck3["model"]["reduce.weight"] - ck["model"]["reduce.weight"]).abs().max()
    assert fresh["step"] == 1


def test_cli_trains_on_a_pack_at_its_manifest_weights(tmp_path, monkeypatch, capsys):
    from transpose_live.train import loop as train_mod

    from helpers import main_runner

    ann, images = _tiny_coco(tmp_path)
    pack = tmp_path / "pack"
    (pack / "set").mkdir(parents=True)
    (pack / "manifest.json").write_text(json.dumps({"format": 1, "sources": {"set": {
        "annotations": "set/person_keypoints.json", "images_dir": "set/images", "images": 4, "persons": 4,
        "bytes": 1, "weight": 0.5}}}))
    (pack / "set" / "person_keypoints.json").write_text(ann.read_text())
    images.rename(pack / "set" / "images")
    seen = {}
    monkeypatch.setattr(train_mod, "train", lambda cfg, resume=False, resume_from=None: seen.update(cfg=cfg) or
                        {"epoch": 0, "trained_seconds": 0.0, "best_ap": -1.0})
    run = main_runner(monkeypatch, capsys, "train")
    code, out, err = run(["--pack", pack, "--out", tmp_path / "r"])
    assert code == 0, err
    (spec,) = seen["cfg"].data
    assert spec.weight == 0.5 and spec.images_dir == str(pack / "set" / "images")
    code, out, err = run(["--out", tmp_path / "r"])
    assert code != 0 and "no training data" in err
    code, out, err = run(["--pack", pack, "--restart-schedule"])
    assert code != 0 and "--restart-schedule needs --resume" in err


def test_device_training_script_end_to_end_on_cpu(tmp_path):
    """tools/training/train_on_device.py: resume a checkpoint under a new schedule, train on a pack, evaluate, and
    leave best/final weights, the resume checkpoint in parts under 16 MiB, history and log."""
    import importlib.util

    from helpers import REPO

    torch.set_num_threads(1)
    ann, images = _tiny_coco(tmp_path)
    train(_cfg(tmp_path, ann, images, epochs=1))                     # a resumable checkpoint at 64x48
    pack = tmp_path / "pack"
    (pack / "set").mkdir(parents=True)
    (pack / "manifest.json").write_text(json.dumps({"format": 1, "sources": {"set": {
        "annotations": "set/person_keypoints.json", "images_dir": "set/images", "weight": 0.5}}}))
    (pack / "set" / "person_keypoints.json").write_text(ann.read_text())
    (pack / "set" / "images").symlink_to(images)
    spec = importlib.util.spec_from_file_location("train_on_device", REPO / "tools" / "training" / "train_on_device.py")
    tod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tod)
    out = tmp_path / "out"
    rc = tod.main(["--pack", str(pack), "--val", f"{ann}:{images}", "--resume-from", str(tmp_path / "run" / "last.pt"),
                   "--out", str(out), "--minutes", "0.002", "--device", "cpu", "--workers", "0", "--batch-size", "2",
                   "--eval-every", "1", "--source-weight", "set=0.25"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    parts = [n for n in names if n.startswith("resume.pt.part")]
    assert names == ["best.pt", "final.pt", "history.json", "log.json", *parts] and len(parts) >= 1
    assert max((out / n).stat().st_size for n in parts) <= 15 * 2**20
    log = json.loads((out / "log.json").read_text())
    # the manifest says 0.5; --source-weight set=0.25 overrides it
    assert log["config"]["restart_schedule"] is True and log["config"]["data"][0]["weight"] == 0.25
    assert 0.0 <= log["best_ap"] <= 1.0 and log["last_eval"]["AP"] == log["best_ap"]
    joined = tmp_path / "joined.pt"
    joined.write_bytes(b"".join((out / n).read_bytes() for n in sorted(parts)))
    resumed = torch.load(joined, weights_only=True)
    assert resumed["previous_runs"][0]["epoch"] == 1 and resumed["step"] >= 1


def test_device_training_script_refuses_bad_source_weights():
    import importlib.util

    from transpose_live.errors import TransposeLiveError

    from helpers import REPO

    spec = importlib.util.spec_from_file_location("train_on_device", REPO / "tools" / "training" / "train_on_device.py")
    tod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tod)
    assert tod.parse_source_weights(["lspet_a=0.3", "lspet_b=1"]) == {"lspet_a": 0.3, "lspet_b": 1.0}
    for bad in ("lspet_a", "=0.3", "lspet_a=0", "lspet_a=-1", "lspet_a=x", "lspet_a=nan"):
        with pytest.raises(TransposeLiveError, match="NAME=W"):
            tod.parse_source_weights([bad])


def test_split_file_parts_join_to_the_original(tmp_path):
    import importlib.util

    from helpers import REPO

    spec = importlib.util.spec_from_file_location("train_on_device", REPO / "tools" / "training" / "train_on_device.py")
    tod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tod)
    data = bytes(range(256)) * 40                                     # 10,240 bytes
    path = tmp_path / "resume.pt"
    path.write_bytes(data)
    parts = tod.split_file(path, part_bytes=4096)
    assert [p.name for p in parts] == ["resume.pt.part0", "resume.pt.part1", "resume.pt.part2"]
    assert not path.exists() and b"".join(p.read_bytes() for p in parts) == data
    assert max(p.stat().st_size for p in parts) == 4096
