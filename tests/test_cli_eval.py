"""`transpose-live eval` on a tiny synthetic COCO set with a fake estimator."""

from __future__ import annotations

import importlib
import json

import pytest
from typer.testing import CliRunner

from test_evaluate import GtEstimator, make_coco, write_images
from transpose_live.errors import TransposeLiveError

try:  # installed: the cli/ folder is the package transpose_live.cli
    from transpose_live.cli import app as app_module
except ImportError:  # run from the checkout
    from cli import app as app_module

cmd_eval = importlib.import_module(f"{app_module.__package__}.cmd_eval")


@pytest.fixture
def dataset(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann, n_images=3)
    return ann, write_images(tmp_path, data), data


def test_eval_writes_report_json(tmp_path, dataset, monkeypatch):
    ann, images, data = dataset
    built = {}

    def fake_build(model, weights, device, flip):
        built.update(model=model, weights=weights, device=device, flip=flip)
        return GtEstimator(data)

    monkeypatch.setattr(cmd_eval, "build_estimator", fake_build)
    report_path = tmp_path / "out" / "report.json"
    result = CliRunner().invoke(app_module.app, ["eval", str(ann), str(images), "--model", "tp_r_a4",
                                                 "--no-flip", "--device", "cpu", "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    assert "AP50" in result.output and "100.0" in result.output
    assert "3 images, 6 labelled persons" in result.output
    assert built == {"model": "tp_r_a4", "weights": None, "device": "cpu", "flip": False}
    report = json.loads(report_path.read_text())
    for key in ("AP", "AP50", "AP75", "APm", "APl", "AR"):
        assert key in report
    assert report["AP"] == pytest.approx(1.0) and report["AR"] == pytest.approx(1.0)
    assert report["APl"] is None                  # no large persons in the synthetic set: n/a, not -1
    assert report["model"] == "tp_r_a4" and report["boxes"] == "gt" and report["flip"] is False
    assert report["images"] == 3 and report["persons"] == 6 and report["predictions"] == 6


def test_eval_max_images_limits_the_set(tmp_path, dataset, monkeypatch):
    ann, images, data = dataset
    monkeypatch.setattr(cmd_eval, "build_estimator", lambda *a: GtEstimator(data))
    report_path = tmp_path / "r.json"
    result = CliRunner().invoke(app_module.app, ["eval", str(ann), str(images), "--max-images", "1",
                                                 "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["images"] == 1 and report["persons"] == 2 and report["predictions"] == 2
    assert report["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("args, message", [
    (["missing.json", "IMAGES"], "annotation file not found"),
    (["ANN", "no_such_dir"], "image folder not found"),
    (["ANN", "IMAGES", "--boxes", "magic"], "--boxes"),
    (["ANN", "IMAGES", "--device", "tpu"], "--device"),
    (["ANN", "IMAGES", "--weights", "nowhere/w.pth"], "weights file not found"),
])
def test_eval_bad_input_raises_one_clear_error(tmp_path, dataset, monkeypatch, args, message):
    ann, images, data = dataset
    monkeypatch.setattr(cmd_eval, "build_estimator", lambda *a: GtEstimator(data))
    argv = ["eval"] + [str(ann) if a == "ANN" else str(images) if a == "IMAGES" else
                       str(tmp_path / a) if a in ("missing.json", "no_such_dir") else a for a in args]
    result = CliRunner().invoke(app_module.app, argv)
    assert isinstance(result.exception, TransposeLiveError)
    assert message in str(result.exception)
