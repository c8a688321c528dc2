"""Weights hub: cache location, download from a local HTTP server, sha256 pinning, strict import; and
models.load_model, which builds models from the paths the hub verifies."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from transpose_live.errors import CheckpointError, TransposeLiveError
from transpose_live.model import download as download_module
from transpose_live.model import hub, load_model
from transpose_live.model.transpose import create_model

PRESET = "tp_r_a3"  # the smallest preset with released-format keys: ~21 MB, fast to build


def _to_bytes(state_dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def state_dict():
    torch.manual_seed(0)
    return create_model(PRESET).state_dict()


@pytest.fixture(scope="module")
def ckpt_bytes(state_dict) -> bytes:
    return _to_bytes(state_dict)


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.startswith("/slow/"):
            time.sleep(2.0)  # longer than the test's socket timeout
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        # /short/: promise more bytes than are sent, then close (a dropped connection)
        self.send_header("Content-Length", str(len(body) + (1000 if self.path.startswith("/short/") else 0)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """Quiet about clients that hung up on purpose (the timeout test leaves before /slow/ answers)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def served(server, ckpt_bytes):
    """The file table the server answers from, reset for each test."""
    _Handler.files.clear()
    _Handler.files["tiny.pth"] = ckpt_bytes
    yield _Handler.files
    _Handler.files.clear()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty cache in tmp_path, no shipped default, no URL override."""
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSPOSE_LIVE_HUB_URL", raising=False)
    monkeypatch.setattr(hub, "ASSETS_DIR", tmp_path / "assets")
    return tmp_path / "home"


@pytest.fixture()
def tiny(server, monkeypatch):
    """A registry entry for the small preset, served by the local server."""
    entry = hub.HubEntry("tiny", PRESET, f"{server}/tiny.pth", "tiny.pth", None, "test entry")
    monkeypatch.setitem(hub.REGISTRY, "tiny", entry)
    return entry


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leftovers(home) -> list[str]:
    return sorted(p.name for p in (home / "checkpoints").glob("*.part"))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------- cache

def test_cache_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("TRANSPOSE_LIVE_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert hub.cache_dir() == tmp_path / "user" / ".cache" / "transpose-live"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "xdg" / "transpose-live"
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "tl"))
    assert hub.cache_dir() == tmp_path / "tl"
    assert hub.checkpoints_dir() == tmp_path / "tl" / "checkpoints"


RELEASED = {  # the authors' README model table: name -> (file, paper AP with detector boxes, with GT boxes)
    "tp_r_a3": ("tp_r_256x192_enc3_d256_h1024_mh8.pth", 0.717, 0.738),
    "tp_r_a4": ("tp_r_256x192_enc4_d256_h1024_mh8.pth", 0.726, 0.751),
    "tp_h_s": ("tp_h_32_256x192_enc4_d64_h128_mh1.pth", 0.742, 0.761),
    "tp_h_a4": ("tp_h_48_256x192_enc4_d96_h192_mh1.pth", 0.753, 0.775),
    "tp_h_a6": ("tp_h_48_256x192_enc6_d96_h192_mh1.pth", 0.758, 0.781),
}


def test_registry_lists_released_entries(home):
    rows = {r.name: r for r in hub.list_entries()}
    assert set(rows) == set(RELEASED)  # no "default" while the asset is absent
    for name, (filename, ap_det, ap_gt) in RELEASED.items():
        row = rows[name]
        assert row.preset == name
        assert row.url == f"https://github.com/yangsenius/TransPose/releases/download/Hub/{filename}"
        assert not row.cached and not row.sha256_known
        assert row.path == home / "checkpoints" / filename
        assert (row.paper_ap.detector, row.paper_ap.gt) == (ap_det, ap_gt)
    assert rows["tp_r_a4"].path == home / "checkpoints" / "tp_r_256x192_enc4_d256_h1024_mh8.pth"


@pytest.mark.parametrize("name", list(RELEASED))
def test_registry_size_is_the_presets_state_dict(name):
    """The size `weights list` shows before a download: the data of the preset the file loads into."""
    state = create_model(name).state_dict()
    assert hub.REGISTRY[name].size_bytes == sum(t.numel() * t.element_size() for t in state.values())


def test_paper_ap_only_for_the_authors_files(home, tiny):
    rows = {r.name: r for r in hub.list_entries()}
    assert rows["tiny"].paper_ap is None and rows["tiny"].size_bytes is None   # same preset, not their file


# -------------------------------------------------------------------------------------------- download

def test_download_is_atomic_and_records_sha(home, served, tiny, ckpt_bytes, capsys):
    path = hub.download("tiny", progress=True)
    assert path == home / "checkpoints" / "tiny.pth"
    assert path.read_bytes() == ckpt_bytes
    assert _leftovers(home) == []
    sha = hashlib.sha256(ckpt_bytes).hexdigest()
    recorded = json.loads((home / "hashes.json").read_text())["tiny"]
    assert recorded["sha256"] == sha and recorded["filename"] == "tiny.pth"
    assert "100%" in capsys.readouterr().err  # the progress line reached the end
    row = next(r for r in hub.list_entries() if r.name == "tiny")
    assert row.cached and row.sha256_known
    assert hub.resolve_weights("tiny") == path

    # Already cached: returned without touching the network.
    _Handler.files.clear()
    assert hub.download("tiny", progress=False) == path


def test_download_without_progress_is_silent(home, served, tiny, capsys):
    assert hub.download("tiny", progress=False).is_file()
    assert capsys.readouterr().err == ""


def test_corrupted_cache_refused_on_next_load(home, served, tiny):
    path = hub.download("tiny", progress=False)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TransposeLiveError, match="sha256") as exc:
        hub.resolve_weights("tiny")
    assert "download tiny --force" in _one_line(exc)
    with pytest.raises(TransposeLiveError, match="sha256"):
        load_model("tiny")
    assert hub.download("tiny", progress=False, force=True).read_bytes() == bytes(served["tiny.pth"])
    assert hub.resolve_weights("tiny") == path


def test_failed_redownload_keeps_old_file(home, served, tiny, ckpt_bytes):
    path = hub.download("tiny", progress=False)
    served["tiny.pth"] = b"not a checkpoint at all"
    with pytest.raises(TransposeLiveError, match="expected") as exc:  # differs from the recorded sha256
        hub.download("tiny", progress=False, force=True)
    assert tiny.url in _one_line(exc)
    assert path.read_bytes() == ckpt_bytes
    assert _leftovers(home) == []


def test_download_refuses_non_checkpoint(home, served, tiny):
    served["tiny.pth"] = b"<html>a login page</html>"
    with pytest.raises(CheckpointError) as exc:
        hub.download("tiny", progress=False)
    message = _one_line(exc)
    assert tiny.url in message and ".part" not in message
    assert not (home / "checkpoints" / "tiny.pth").exists()
    assert _leftovers(home) == []
    assert not (home / "hashes.json").exists()


def test_download_refuses_wrong_architecture(home, served, tiny, monkeypatch):
    monkeypatch.setitem(hub.REGISTRY, "tiny", hub.HubEntry("tiny", "tp_r_a4", tiny.url, "tiny.pth", None, ""))
    with pytest.raises(CheckpointError, match="missing keys: global_encoder.layers.3") as exc:
        hub.download("tiny", progress=False)
    assert tiny.url in _one_line(exc)
    assert not (home / "checkpoints" / "tiny.pth").exists()


def test_download_404_names_url(home, served, tiny, server):
    with pytest.raises(TransposeLiveError) as exc:
        hub.download("tiny", progress=False, url=f"{server}/missing.pth")
    message = _one_line(exc)
    assert message.startswith(f"could not download {server}/missing.pth: HTTP 404")
    assert "transpose-live weights import FILE --name tiny" in message
    assert _leftovers(home) == []


def test_download_unreachable_names_url(home, tiny):
    url = f"http://127.0.0.1:{_closed_port()}/tiny.pth"
    with pytest.raises(TransposeLiveError) as exc:
        hub.download("tiny", progress=False, url=url)
    assert _one_line(exc).startswith(f"could not download {url}: ")
    assert not (home / "checkpoints" / "tiny.pth").exists()


def test_download_timeout_and_truncation(home, served, tiny, server, monkeypatch):
    monkeypatch.setattr(download_module, "TIMEOUT_S", 0.3)
    with pytest.raises(TransposeLiveError, match="timed out") as exc:
        hub.download("tiny", progress=False, url=f"{server}/slow/tiny.pth")
    assert f"{server}/slow/tiny.pth" in _one_line(exc)
    with pytest.raises(TransposeLiveError, match="1000 bytes missing") as exc:
        hub.download("tiny", progress=False, url=f"{server}/short/tiny.pth")
    assert f"{server}/short/tiny.pth" in _one_line(exc)
    assert _leftovers(home) == [] and not (home / "checkpoints" / "tiny.pth").exists()


def test_hub_url_env_replaces_base(home, served, server, monkeypatch):
    dead = f"http://127.0.0.1:{_closed_port()}/releases"
    monkeypatch.setitem(hub.REGISTRY, "tiny", hub.HubEntry("tiny", PRESET, f"{dead}/tiny.pth", "tiny.pth", None, ""))
    monkeypatch.setenv("TRANSPOSE_LIVE_HUB_URL", server + "/")
    assert next(r for r in hub.list_entries() if r.name == "tiny").url == f"{server}/tiny.pth"
    assert hub.download("tiny", progress=False).is_file()
    assert json.loads((home / "hashes.json").read_text())["tiny"]["source"] == f"{server}/tiny.pth"


# ---------------------------------------------------------------------------------------------- import

def test_import_then_load(home, tiny, tmp_path, state_dict, ckpt_bytes):
    src = tmp_path / "mine.pth"
    src.write_bytes(ckpt_bytes)
    path = hub.import_checkpoint(src, "tiny")
    assert path == home / "checkpoints" / "tiny.pth" and path.read_bytes() == ckpt_bytes
    recorded = json.loads((home / "hashes.json").read_text())["tiny"]
    assert recorded["sha256"] == hashlib.sha256(ckpt_bytes).hexdigest()

    model = load_model("tiny")
    assert not model.training and model.config.name == PRESET
    assert torch.equal(model.state_dict()["final_layer.weight"], state_dict["final_layer.weight"])
    # A file path with a preset name needs no registry entry.
    assert not load_model(PRESET, weights=src).training


@pytest.mark.parametrize("damage, names", [
    ("rename", ["final_layer.weight", "final_layer.renamed"]),
    ("shape", ["reduce.weight", "(128, 512, 1, 1)"]),
])
def test_import_refuses_mismatch_naming_keys(home, tiny, tmp_path, state_dict, damage, names):
    bad = dict(state_dict)
    if damage == "rename":
        bad["final_layer.renamed"] = bad.pop("final_layer.weight")
    else:
        bad["reduce.weight"] = torch.zeros(128, 512, 1, 1)
    src = tmp_path / "bad.pth"
    torch.save(bad, src)
    with pytest.raises(CheckpointError) as exc:
        hub.import_checkpoint(src, "tiny")
    message = _one_line(exc)
    assert all(name in message for name in names), message
    assert not (home / "checkpoints" / "tiny.pth").exists()
    assert not (home / "hashes.json").exists()


def test_import_bad_names_and_files(home, tiny, tmp_path):
    with pytest.raises(TransposeLiveError, match="unknown weights 'nope'.*tp_r_a4"):
        hub.import_checkpoint(tmp_path / "x.pth", "nope")
    with pytest.raises(TransposeLiveError, match="not found"):
        hub.import_checkpoint(tmp_path / "absent.pth", "tiny")
    junk = tmp_path / "junk.pth"
    junk.write_text("hello")
    with pytest.raises(CheckpointError, match="junk.pth"):
        hub.import_checkpoint(junk, "tiny")


# ------------------------------------------------------------------------------------ load / default

def test_hub_hands_out_paths_not_models():
    assert not hasattr(hub, "load_model") and not hasattr(hub, "_preset_for")


def test_load_model_errors(home, tiny, tmp_path, monkeypatch):
    with pytest.raises(TransposeLiveError, match="downloaded on first use.*weights import FILE --name NAME"):
        load_model()  # no shipped default here
    with pytest.raises(TransposeLiveError, match="say which model .*x.pth is for: one of .*tp_r_a3"):
        load_model(weights=tmp_path / "x.pth")
    monkeypatch.setenv("TRANSPOSE_LIVE_OFFLINE", "1")  # a registered name is otherwise fetched on first use
    with pytest.raises(TransposeLiveError, match="not downloaded.*network access is off.*weights import FILE "
                                                 "--name tiny.*weights download tiny") as exc:
        load_model("tiny")
    assert tiny.url in _one_line(exc)
    with pytest.raises(TransposeLiveError, match="no released weights for 'tp_r_a3s'"):
        load_model("tp_r_a3s")  # a paper-only preset
    with pytest.raises(TransposeLiveError, match="unknown model 'nope'"):
        load_model("nope", weights=tmp_path / "x.pth")
    with pytest.raises(TransposeLiveError, match="not found"):
        load_model(PRESET, weights=tmp_path / "x.pth")


def test_shipped_default(home, tmp_path, ckpt_bytes, monkeypatch):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "default.pt").write_bytes(ckpt_bytes)
    meta = {"preset": PRESET, "image_size": [128, 96], "file": "default.pt",
            "sha256": hashlib.sha256(ckpt_bytes).hexdigest()}
    (assets / "default.json").write_text(json.dumps(meta))

    row = next(r for r in hub.list_entries() if r.name == "default")
    assert row.cached and row.sha256_known and row.path == assets / "default.pt" and row.url is None
    model = load_model()
    assert model.config.name == PRESET and model.config.image_size == (128, 96) and not model.training
    assert load_model(image_size=(256, 192)).config.image_size == (256, 192)
    assert load_model(image_size="192x160").config.image_size == (192, 160)
    with pytest.raises(TransposeLiveError, match="bad size"):
        load_model(image_size="big")
    # The entry's image size goes through the shared size parser: a broken one is named, not guessed.
    (assets / "default.json").write_text(json.dumps(meta | {"image_size": [8, 8]}))
    with pytest.raises(TransposeLiveError, match="broken default.json.*8x8"):
        load_model()
    (assets / "default.json").write_text(json.dumps(meta))
    with pytest.raises(TransposeLiveError, match="shipped"):
        hub.import_checkpoint(assets / "default.pt", "default")

    (assets / "default.json").write_text(json.dumps(meta | {"sha256": "0" * 64}))
    with pytest.raises(TransposeLiveError, match="sha256.*reinstall"):
        load_model()
