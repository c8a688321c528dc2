"""`transpose-live weights ...` through the real CLI entry point: exit codes and one-line errors."""

from __future__ import annotations

import functools
import socket
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from transpose_live.model import hub
from transpose_live.model.transpose import create_model

try:  # installed layout first, then the source tree's bare `cli`
    from transpose_live.cli.app import main
except ImportError:
    from cli.app import main

PRESET = "tp_r_a3"


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["transpose-live", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSPOSE_LIVE_HUB_URL", raising=False)
    monkeypatch.setattr(hub, "ASSETS_DIR", tmp_path / "assets")
    monkeypatch.setitem(hub.REGISTRY, "tiny", hub.HubEntry("tiny", PRESET, None, "tiny.pth", None, "test entry"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def ckpt_bytes(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "good.pth"
    torch.save(create_model(PRESET).state_dict(), path)
    return path.read_bytes()


def assert_one_line_error(code: int, err: str, *parts: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])


def test_list_shows_registry(home, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "weights", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "preset", "AP", "AP(gt)", "size", "cached", "sha256", "path", "/", "url"]
    row = next(line for line in lines if line.startswith("tp_r_a4 "))
    # the paper's AP with detected boxes, the authors' with GT boxes, the data size before download
    assert row.split()[:7] == ["tp_r_a4", "tp_r_a4", "0.726", "0.751", "~22.9", "MB", "no"]
    assert row.endswith("/releases/download/Hub/tp_r_256x192_enc4_d256_h1024_mh8.pth")
    names = [line.split()[0] for line in lines[1:6]]
    assert names == ["tp_r_a3", "tp_r_a4", "tp_h_s", "tp_h_a4", "tp_h_a6"]   # all five releases
    h_a6 = next(line for line in lines if line.startswith("tp_h_a6 ")).split()
    assert h_a6[2:6] == ["0.758", "0.781", "~66.7", "MB"] and h_a6[-1].endswith("tp_h_48_256x192_enc6_d96_h192_mh1.pth")
    assert lines[-1] == f"cache: {home / 'checkpoints'}"


def test_import_missing_file(home, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "absent.pth"
    code, _, err = run_cli(monkeypatch, capsys, "weights", "import", str(missing), "--name", "tiny")
    assert_one_line_error(code, err, str(missing))


def test_import_non_checkpoint(home, tmp_path, monkeypatch, capsys):
    junk = tmp_path / "notes.pth"
    junk.write_text("these are not weights\n" * 50)
    code, _, err = run_cli(monkeypatch, capsys, "weights", "import", str(junk), "--name", "tiny")
    assert_one_line_error(code, err, str(junk))
    assert not (home / "checkpoints" / "tiny.pth").exists()


def test_import_truncated(home, tmp_path, monkeypatch, capsys, ckpt_bytes):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(ckpt_bytes[: len(ckpt_bytes) // 2])
    code, _, err = run_cli(monkeypatch, capsys, "weights", "import", str(cut), "--name", "tiny")
    assert_one_line_error(code, err, str(cut))
    assert not (home / "checkpoints" / "tiny.pth").exists()


def test_import_then_list_and_download_cached(home, tmp_path, monkeypatch, capsys, ckpt_bytes):
    good = tmp_path / "good.pth"
    good.write_bytes(ckpt_bytes)
    code, out, _ = run_cli(monkeypatch, capsys, "weights", "import", str(good), "--name", "tiny")
    assert code == 0 and str(home / "checkpoints" / "tiny.pth") in out
    code, out, _ = run_cli(monkeypatch, capsys, "weights", "list")
    row = next(line for line in out.splitlines() if line.startswith("tiny "))
    mb = f"{len(ckpt_bytes) / (1024 * 1024):.1f}"       # cached: the file's own size, no "~"
    assert row.split() == ["tiny", PRESET, "-", "-", mb, "MB", "yes", "known", str(home / "checkpoints" / "tiny.pth")]
    code, out, _ = run_cli(monkeypatch, capsys, "weights", "download", "tiny")
    assert code == 0 and "already cached" in out


def test_download_unreachable_and_unknown(home, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TRANSPOSE_LIVE_HUB_URL", f"http://127.0.0.1:{port}/hub")
    code, _, err = run_cli(monkeypatch, capsys, "weights", "download", "tp_r_a4")
    url = f"http://127.0.0.1:{port}/hub/tp_r_256x192_enc4_d256_h1024_mh8.pth"
    assert_one_line_error(code, err, f"could not download {url}", "weights import FILE --name tp_r_a4")
    assert not (home / "checkpoints" / "tp_r_256x192_enc4_d256_h1024_mh8.pth").exists()

    code, _, err = run_cli(monkeypatch, capsys, "weights", "download", "nope")
    assert_one_line_error(code, err, "unknown weights 'nope'")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def test_download_saves_and_reports_progress_on_stderr(home, tmp_path, monkeypatch, capsys, ckpt_bytes):
    served = tmp_path / "served"
    served.mkdir()
    (served / "tiny.pth").write_bytes(ckpt_bytes)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/tiny.pth"
        monkeypatch.setitem(hub.REGISTRY, "tiny", hub.HubEntry("tiny", PRESET, url, "tiny.pth", None, "test entry"))
        code, out, err = run_cli(monkeypatch, capsys, "weights", "download", "tiny")
        target = home / "checkpoints" / "tiny.pth"
        assert code == 0 and out == f"tiny: saved {target}\n"   # stdout: the result only
        assert target.read_bytes() == ckpt_bytes
        mb = len(ckpt_bytes) / (1024 * 1024)
        assert f"downloading tiny: {mb:.1f}/{mb:.1f} MB (100%)" in err.splitlines()[-1]
        code, out, _ = run_cli(monkeypatch, capsys, "weights", "download", "tiny", "--force")
        assert code == 0 and out == f"tiny: saved {target}\n"
    finally:
        httpd.shutdown()
        httpd.server_close()
