"""`transpose-live bench`: the shipped model is timed as it runs (its own weights and input size)."""

from __future__ import annotations

import json

import pytest

from helpers import main_runner


@pytest.fixture
def run_main(monkeypatch, capsys):
    return main_runner(monkeypatch, capsys, "bench")


def test_default_model_is_timed_at_its_own_input_size(tmp_path, run_main):
    out = tmp_path / "rows.json"
    code, stdout, err = run_main(["--model", "default", "--model", "tp_m_a4", "--batch", "1", "--path", "fast",
                                  "--seconds", "0.05", "--device", "cpu", "--json", out])
    assert code == 0, err
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [(r["preset"], tuple(r["image_size"])) for r in rows] == [("default", (192, 144)), ("tp_m_a4", (256, 192))]
    assert all(r["crops_per_s"] > 0 and r["batch"] == 1 and not r["attention"] for r in rows)
    assert all(r["eager_crops_per_s"] > 0 and r["latency_p50_ms"] <= r["latency_p95_ms"] for r in rows)
    assert data["environment"]["versions"]["torch"] and data["environment"]["torch_threads"] >= 1
    table = stdout.splitlines()
    assert table[0].split()[:3] == ["model", "input", "backend"] and len(table) == 3   # the table once, on stdout
    # stderr: what is being timed, not the rows again (a terminal shows both streams)
    assert [line.split("]")[0] for line in err.splitlines() if line.startswith("[")] == ["[1/2", "[2/2"]
    assert not any("crops" in line or line.split()[:1] == ["default"] for line in err.splitlines())


def test_unknown_model_is_one_line(run_main):
    code, _, err = run_main(["--model", "tp_x_a9", "--seconds", "0.05"])
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "unknown model 'tp_x_a9'" in err


def _bf16() -> bool:
    from transpose_live.model.backends.openvino_backend import has_bf16

    return has_bf16()


def test_every_backend_gets_a_row_with_its_eager_baseline_timed_in_turns(tmp_path, run_main):
    from transpose_live.model.backends import available_backends

    out = tmp_path / "rows.json"
    code, stdout, err = run_main(["--model", "tp_m_a4", "--image-size", "64x48", "--batch", "2", "--backend", "all",
                                  "--path", "both", "--seconds", "0.02", "--device", "cpu", "--json", out])
    assert code == 0, err
    rows = json.loads(out.read_text())["rows"]
    backends = available_backends("cpu")
    assert [(r["backend"], r["attention"]) for r in rows] == [(b, a) for a in (False, True) for b in backends]
    assert all(r["eager_crops_per_s"] > 0 and r["speedup"] > 0 for r in rows)   # each row timed its own baseline
    assert all(tuple(r["image_size"]) == (64, 48) for r in rows)
    # auto: fp32, but mixed on OpenVINO's fast path where the CPU has bf16 (its maps' graph stays fp32)
    assert all(r["precision"] == ("mixed" if r["backend"] == "openvino" and not r["attention"] and _bf16() else "fp32")
               for r in rows)
    assert len(stdout.splitlines()) == 1 + len(rows)


def test_an_unknown_backend_is_one_line(run_main):
    code, _, err = run_main(["--backend", "tensorrt", "--seconds", "0.05"])
    assert code == 2 and "unknown backend 'tensorrt'" in err and len(err.strip().splitlines()) == 1


def test_pipeline_rows_per_backend_with_stage_times_and_latency(tmp_path, run_main):
    from helpers import synthetic_clip

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=6)
    out = tmp_path / "pipeline.json"
    code, stdout, err = run_main(["--pipeline", clip, "--frames", "4", "--detector", "none", "--device", "cpu",
                                  "--backend", "torch", "--backend", "onnxruntime", "--json", out])
    assert code == 0, err
    data = json.loads(out.read_text())
    runs = data["pipelines"]
    assert [r["backend"] for r in runs] == ["torch", "onnxruntime"]
    for r in runs:
        assert r["frames"] == 4 and r["pipeline_fps"] > 0 and r["precision"] == "fp32"
        assert set(r["stage_ms"]) == {"capture", "model", "track", "render"} and all(r["stage_ms"].values())
        assert r["slowest_stage_fps"] == pytest.approx(1000.0 / max(r["stage_ms"].values()))
        assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"]
    assert data["environment"]["versions"]["onnxruntime"] and data["environment"]["device"] == "cpu"
    assert stdout.count("pipeline end to end:") == 2          # one table per backend, each once


def test_calls_are_timed_in_turns_on_a_worker_thread():
    import threading

    import torch

    from transpose_live.bench.models import time_calls

    order, threads = [], set()

    def make(tag):
        def fn():
            order.append(tag)
            threads.add(threading.current_thread().name)
        return fn

    a, b = time_calls(make("a"), make("b"), device=torch.device("cpu"), min_seconds=0.0, warmup=1, min_calls=2,
                      turn_seconds=0.0)
    # warm-up, then turns: an untimed settling call and one timed call each (turn_seconds 0), until 2 each
    assert len(a) == len(b) == 2 and order == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert threads == {"transpose-live-bench-model"}                     # where the pipeline runs the model too


def test_all_times_every_preset_next_to_the_paper_ap_without_downloading(tmp_path, run_main, monkeypatch):
    """--model all: the shipped model, then every preset; random weights where none are cached (nothing is
    fetched: the hub points at a closed port and the network is off), the paper's AP beside each."""
    import socket

    from transpose_live.model.config import PRESETS
    from transpose_live.model.registry import PAPER_AP

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))        # an empty cache
    monkeypatch.setenv("TRANSPOSE_LIVE_HUB_URL", f"http://127.0.0.1:{port}/hub")
    monkeypatch.setenv("TRANSPOSE_LIVE_OFFLINE", "1")
    out = tmp_path / "rows.json"
    code, stdout, err = run_main(["--model", "all", "--image-size", "64x48", "--batch", "2", "--backend", "torch",
                                  "--seconds", "0.01", "--device", "cpu", "--json", out])
    assert code == 0, err
    rows = json.loads(out.read_text())["rows"]
    assert [r["preset"] for r in rows] == ["default", *PRESETS]
    assert [r["weights"] for r in rows] == ["shipped"] + ["random"] * len(PRESETS)
    for r in rows:
        paper = PAPER_AP.get("tp_m_a4" if r["preset"] == "default" else r["preset"])
        assert (r["paper_ap"], r["paper_ap_gt"]) == ((paper.detector, paper.gt) if paper else (None, None))
        assert r["ms_per_person"] == pytest.approx(1000.0 / r["crops_per_s"], rel=1e-3)
    assert rows[3]["paper_ap"] == 0.726 and rows[3]["paper_ap_gt"] == 0.751     # tp_r_a4, Table 2 / README
    header, *lines = stdout.splitlines()
    assert header.split()[6:8] == ["crops/s", "ms/person"] and header.split()[-2:] == ["AP", "AP(gt)"]
    r_a4 = next(line for line in lines if line.startswith("tp_r_a4 ")).split()
    assert r_a4[-3:] == ["random", "0.726", "0.751"]
    assert not list((tmp_path / "home").glob("checkpoints/*"))                 # nothing was downloaded


def test_cached_released_weights_are_timed_as_released(tmp_path, run_main, monkeypatch):
    import torch

    from transpose_live.model import hub
    from transpose_live.model.transpose import create_model

    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    torch.save(create_model("tp_r_a3").state_dict(), tmp_path / "r_a3.pth")
    hub.import_checkpoint(tmp_path / "r_a3.pth", "tp_r_a3")
    out = tmp_path / "rows.json"
    code, _, err = run_main(["--model", "tp_r_a3", "--image-size", "64x48", "--batch", "1", "--backend", "torch",
                             "--seconds", "0.01", "--device", "cpu", "--json", out])
    assert code == 0, err
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["preset"], row["weights"], tuple(row["image_size"]), row["paper_ap"]) == \
        ("tp_r_a3", "released", (64, 48), 0.717)
