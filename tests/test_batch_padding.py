"""Forward passes padded to a few batch sizes (pose/padding.py): only those sizes reach a graph runtime, on
every path (PoseEstimator.estimate, its forward with the flip test and attention, SharedEstimator), and the
real crops get the very bits an unpadded pass gives them."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from transpose_live.model.backends import available_backends
from transpose_live.pose.padding import BATCH_SIZES, chunks, pad_rows, padded_size

needs_openvino = pytest.mark.skipif("openvino" not in available_backends("cpu"), reason="needs OpenVINO")


def test_padded_size_and_chunks():
    assert [padded_size(n) for n in (1, 2, 3, 4, 5, 7, 9, 13, 16)] == [1, 2, 3, 4, 6, 8, 12, 16, 16]
    assert padded_size(0) == 0
    assert chunks(5) == [(slice(0, 5), 6)]
    assert chunks(37) == [(slice(0, 16), 16), (slice(16, 32), 16), (slice(32, 37), 6)]
    assert chunks(0) == []
    assert padded_size(40, (1, 2, 4)) == 40 and chunks(6, (1, 2, 4)) == [(slice(0, 4), 4), (slice(4, 6), 2)]


def test_pad_rows_appends_zero_rows_to_numpy_and_torch():
    x = np.ones((3, 2), np.float32)
    padded = pad_rows(x, 4)
    assert padded.shape == (4, 2) and padded.dtype == np.float32 and (padded[:3] == 1).all() and (padded[3] == 0).all()
    t = torch.ones(3, 2, dtype=torch.float16)
    tp = pad_rows(t, 8)
    assert tp.shape == (8, 2) and tp.dtype == torch.float16 and tp[:3].eq(1).all() and tp[3:].eq(0).all()
    assert pad_rows(x, 3) is x


@pytest.fixture(scope="module")
def _home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def estimator(tiny_weights, _home, monkeypatch):
    """The tiny model on OpenVINO fp32, its backend recording the batch sizes it is called with."""
    from transpose_live.pose.estimator import PoseEstimator

    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(_home))   # exports go to this session's cache
    est = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", backend="openvino", precision="fp32")
    inner, seen = est.backend, []

    def recording(x, attention=False):
        seen.append(int(x.shape[0]))
        return inner(x, attention)

    est.backend = recording
    est.seen = seen
    return est


def _crops(n: int, est) -> torch.Tensor:
    h, w = est.config.image_size
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(n))


@needs_openvino
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("attention", [False, True])
def test_padded_passes_give_the_unpadded_bits(estimator, flip, attention):
    for n in (1, 3, 5, 7, 12):
        x = _crops(n, estimator)
        estimator.batch_sizes = None
        estimator.seen.clear()
        want_hm, want_attn = estimator.forward(x, attention, flip=flip)
        assert estimator.seen == [2 * n if flip else n]          # unpadded: the size as it comes
        estimator.batch_sizes = BATCH_SIZES
        estimator.seen.clear()
        got_hm, got_attn = estimator.forward(x, attention, flip=flip)
        assert set(estimator.seen) <= set(BATCH_SIZES) and sum(estimator.seen) >= (2 * n if flip else n)
        assert isinstance(got_hm, np.ndarray)                      # the graph runtime's arrays: numpy
        assert got_hm.shape == want_hm.shape and np.array_equal(got_hm, want_hm)
        if attention:
            assert got_attn is not None and want_attn is not None and got_attn.shape == (n, *want_attn.shape[1:])
            assert np.array_equal(got_attn, want_attn)
        else:
            assert got_attn is None and want_attn is None


@needs_openvino
def test_every_path_sends_only_the_fixed_sizes(estimator):
    from transpose_live.pose.batching import SharedEstimator

    assert estimator.batch_sizes == BATCH_SIZES        # the graph runtimes pad by default
    frame = np.random.RandomState(0).randint(0, 256, (120, 160, 3)).astype(np.uint8)
    boxes = [[5.0 + 7 * i, 3.0, 40.0, 80.0] for i in range(20)]
    for k in (3, 5, 6, 20):
        estimator.estimate(frame, boxes[:k])
    estimator.flip = True
    estimator.estimate(frame, boxes[:7])                # 14 rows with the mirrors -> 16
    estimator.flip = False
    with SharedEstimator(estimator, max_batch=32, max_wait_ms=50) as shared:
        threads = [threading.Thread(target=shared.estimate, args=(frame, boxes[:k])) for k in (3, 5, 7, 6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert estimator.seen and set(estimator.seen) <= set(BATCH_SIZES)
    assert 16 in estimator.seen and 6 in estimator.seen   # 20 crops: 16 + 4; 5 crops -> 6


def test_torch_backend_is_not_padded(tiny_weights):
    from transpose_live.pose.estimator import PoseEstimator

    est = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", backend="torch")
    assert est.batch_sizes is None


@needs_openvino
def test_warm_up_runs_every_padded_size_once_largest_first_and_later_passes_use_only_those(estimator):
    assert estimator.warm_up() == len(BATCH_SIZES)
    assert estimator.seen == sorted(BATCH_SIZES, reverse=True)     # the high-water mark first, then the rest
    estimator.seen.clear()
    h, w = estimator.config.image_size
    estimator.forward(np.zeros((5, 3, h, w), np.float32))
    assert estimator.seen == [6] and set(estimator.seen) <= set(BATCH_SIZES)


def test_warm_up_is_a_no_op_on_eager_torch(tiny_weights):
    from transpose_live.pose.estimator import PoseEstimator

    est = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", backend="torch")
    assert est.batch_sizes is None and est.warm_up() == 0
