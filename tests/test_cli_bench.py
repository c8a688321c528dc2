"""`transpose-live bench`: the shipped model is timed as it runs (its own weights and input size)."""

from __future__ import annotations

import json

import pytest

from conftest import main_runner


@pytest.fixture
def run_main(monkeypatch, capsys):
    return main_runner(monkeypatch, capsys, "bench")


def test_default_model_is_timed_at_its_own_input_size(tmp_path, run_main):
    out = tmp_path / "rows.json"
    code, stdout, err = run_main(["--model", "default", "--model", "tp_m_a4", "--batch", "1", "--path", "fast",
                                  "--seconds", "0.05", "--device", "cpu", "--json", out])
    assert code == 0, err
    rows = json.loads(out.read_text())
    assert [(r["preset"], tuple(r["image_size"])) for r in rows] == [("default", (192, 144)), ("tp_m_a4", (256, 192))]
    assert all(r["crops_per_s"] > 0 and r["batch"] == 1 and not r["attention"] for r in rows)
    table = stdout.splitlines()
    assert table[0].split()[:2] == ["model", "input"] and len(table) == 3      # the table once, on stdout


def test_unknown_model_is_one_line(run_main):
    code, _, err = run_main(["--model", "tp_x_a9", "--seconds", "0.05"])
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "unknown model 'tp_x_a9'" in err
