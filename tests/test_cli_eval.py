"""`transpose-live eval` through the real CLI (cli.app:main) with a tiny random model on a small synthetic
COCO set whose labelled keypoints are the tiny model's own predictions in the labelled boxes: with the
paper's protocol (ground-truth boxes, no flip) the command must score exactly AP 100, so any change on
the way (boxes, flip, thresholds, image ids) shows in the numbers."""

from __future__ import annotations

import json

import pytest

from transpose_live.live.run import load_estimator
from transpose_live.live.spec import DEFAULT_MIN_PERSON_SCORE, RunSpec
from transpose_live.media.records import coco_result
from transpose_live.train import evaluate

from helpers import main_runner, make_coco, write_images


@pytest.fixture
def tiny_args(tiny_weights):
    return ["--model", "tp_m_a4", "--weights", str(tiny_weights), "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_options):
    """3 images (the first grayscale), 6 labelled persons, a crowd region and a person without keypoints;
    the labelled keypoints are replaced by what the tiny model finds in each labelled box. Read only."""
    folder = tmp_path_factory.mktemp("coco")
    ann = folder / "kp.json"
    data = make_coco(ann, n_images=3)
    images = write_images(folder, data)
    coco = evaluate.load_coco(ann)
    estimator = load_estimator(RunSpec.from_options(**tiny_options))
    for img_id in evaluate.select_image_ids(coco):
        frame = evaluate.read_image(images, coco.imgs[img_id]["file_name"])
        boxes, scores = evaluate.gt_boxes(coco, img_id)
        people = evaluate.labelled_persons(coco, [img_id])
        assert len(people) == len(boxes)
        for person, pose in zip(people, estimator.estimate(frame, boxes, scores)):
            predicted = coco_result(img_id, pose.keypoints, pose.scores, pose.score)["keypoints"]
            labelled = next(a for a in data["annotations"] if a["id"] == person["id"])
            labelled["keypoints"] = [v if k % 3 != 2 else 2 for k, v in enumerate(predicted)]
    ann.write_text(json.dumps(data))
    return ann, images, data


@pytest.fixture
def run_main(monkeypatch, capsys):
    """`transpose-live eval ARGS` through cli.app:main: (exit code, stdout, stderr)."""
    return main_runner(monkeypatch, capsys, "eval")


def test_eval_writes_report_json(tmp_path, dataset, tiny_args, tiny_weights, run_main):
    ann, images, _ = dataset
    report_path = tmp_path / "out" / "report.json"
    report_path.parent.mkdir()
    code, out, err = run_main([ann, images, *tiny_args, "--min-person-score", "0", "--json", report_path])
    assert code == 0, err
    assert "AP50" in out and "100.0" in out                       # the table on stdout
    assert "3 images, 6 labelled persons, 6 predicted poses" in out
    assert f"wrote {report_path}" in err and str(report_path) not in out
    report = json.loads(report_path.read_text())
    for key in ("AP", "AP50", "AP75", "APm", "APl", "AR"):
        assert key in report
    assert report["AP"] == pytest.approx(1.0) and report["AR"] == pytest.approx(1.0)
    assert report["APl"] is None                  # no large persons in the synthetic set: n/a, not -1
    assert report["model"] == "tp_m_a4" and report["weights"] == str(tiny_weights)
    assert report["person_boxes"] == "gt" and report["detector"] is None
    assert report["flip"] is False and report["min_person_score"] == 0.0       # flip is off by default
    assert report["images"] == 3 and report["persons"] == 6 and report["predictions"] == 6
    assert sorted(p.name for p in report_path.parent.iterdir()) == ["report.json"]   # no temp file left


def test_eval_flip_turns_the_flip_test_on(tmp_path, dataset, tiny_args, run_main):
    ann, images, _ = dataset
    report_path = tmp_path / "r.json"
    code, _, err = run_main([ann, images, *tiny_args, "--min-person-score", "0", "--flip", "--json", report_path])
    assert code == 0, err
    report = json.loads(report_path.read_text())
    assert report["flip"] is True and report["predictions"] == 6
    assert report["AP"] < 1.0             # averaged with the mirrored crop: not the labels made without it


def test_eval_max_images_limits_the_set(tmp_path, dataset, tiny_args, run_main):
    ann, images, _ = dataset
    report_path = tmp_path / "r.json"
    code, out, err = run_main([ann, images, "--max-images", "1", *tiny_args, "--min-person-score", "0",
                               "--json", report_path])
    assert code == 0, err
    report = json.loads(report_path.read_text())
    assert report["images"] == 1 and report["persons"] == 2 and report["predictions"] == 2
    assert report["AP"] == pytest.approx(1.0)
    assert "1 images, 2 labelled persons, 2 predicted poses" in out


def test_eval_min_person_score_leaves_out_weak_persons(tmp_path, dataset, tiny_args, run_main):
    """The tiny model's persons score ~0.0002: the default and 1.0 leave them all out (AP 0)."""
    ann, images, _ = dataset
    assert DEFAULT_MIN_PERSON_SCORE > 0.001
    for extra, expected in (([], DEFAULT_MIN_PERSON_SCORE), (["--min-person-score", "1.0"], 1.0)):
        report_path = tmp_path / f"r{expected}.json"
        code, out, err = run_main([ann, images, *tiny_args, *extra, "--json", report_path])
        assert code == 0, err
        report = json.loads(report_path.read_text())
        assert report["min_person_score"] == expected
        assert report["predictions"] == 0 and report["AP"] == 0.0 and report["persons"] == 6
        assert "0 predicted poses" in out


def test_eval_with_detected_boxes(tmp_path, dataset, tiny_args, run_main):
    """--person-boxes detected uses --detector: the real SSD finds nobody on the plain grey images;
    `none` makes each whole image one person."""
    ann, images, _ = dataset
    reports = {}
    for detector in ("ssd", "none"):
        report_path = tmp_path / f"{detector}.json"
        code, _, err = run_main([ann, images, "--person-boxes", "detected", "--detector", detector, *tiny_args,
                                 "--min-person-score", "0", "--json", report_path])
        assert code == 0, err
        reports[detector] = json.loads(report_path.read_text())
    for detector, report in reports.items():
        assert report["person_boxes"] == "detected" and report["detector"] == detector
        assert report["images"] == 3 and report["persons"] == 6
    assert reports["ssd"]["predictions"] == 0 and reports["ssd"]["AP"] == 0.0
    # the box threshold used is written out: eval's default (the COCO test's low one), none for "none"
    assert reports["ssd"]["detector_min_score"] == 0.05 and reports["none"]["detector_min_score"] is None
    assert reports["none"]["predictions"] == 3 and reports["none"]["AP"] < 1.0


@pytest.mark.parametrize("args, message", [
    (["missing.json", "IMAGES"], "annotation file not found"),
    (["ANN", "no_such_dir"], "image folder not found"),
    (["ANN", "IMAGES", "--person-boxes", "magic"], "--person-boxes must be gt or detected, got 'magic'"),
    (["ANN", "IMAGES", "--person-boxes", "detected", "--detector-min-score", "1.5"],
     "--detector-min-score must be between 0 and 1"),
    (["ANN", "IMAGES", "--detector-min-score", "0.2"], "--detector-min-score needs --person-boxes detected"),
    (["ANN", "IMAGES", "--person-boxes", "detected", "--detector", "none", "--detector-min-score", "0.2"],
     "--detector-min-score needs --person-boxes detected"),
    (["ANN", "IMAGES", "--detector", "magic"], "unknown detector"),
    (["ANN", "IMAGES", "--device", "tpu"], "unknown device 'tpu'"),
    (["ANN", "IMAGES", "--device", "cuda:7"], "device 'cuda:7' asked for, but this machine has"),
    (["ANN", "IMAGES", "--weights", "nowhere/w.pth"], "weights file not found"),
    (["ANN", "IMAGES", "--min-person-score", "2"], "min_person_score must be between 0 and 1"),
    (["ANN", "IMAGES", "--json", "no_dir/r.json"], "does not exist"),
])
def test_eval_bad_input_is_one_line_exit_2(tmp_path, dataset, tiny_args, run_main, args, message):
    ann, images, _ = dataset
    argv = [str(ann) if a == "ANN" else str(images) if a == "IMAGES" else
            str(tmp_path / a) if a in ("missing.json", "no_such_dir", "no_dir/r.json") else a for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_main([*argv[:2], *tiny_args, *argv[2:]])      # a case's own option comes last and wins
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("old", [["--boxes", "gt"], ["--boxes", "detector"]])
def test_eval_old_boxes_option_is_a_usage_error(dataset, tiny_args, run_main, old):
    """--boxes gt|detector became --person-boxes gt|detected: the old spelling must not run."""
    ann, images, _ = dataset
    code, out, err = run_main([ann, images, *tiny_args, *old])
    assert code == 2 and out == ""
    assert "No such option" in err and "--boxes" in err
