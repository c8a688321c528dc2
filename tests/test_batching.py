"""SharedEstimator: many threads, one model; batched forward passes give each caller PoseEstimator's poses."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from transpose_live.errors import TransposeLiveError
from transpose_live.model import create_model
from transpose_live.pose.batching import SharedEstimator
from transpose_live.pose.estimator import PoseEstimator

IMAGE_SIZE = (64, 48)   # (h, w)
CALLERS = 4


class RowByRow(nn.Module):
    """The tiny real model run one crop at a time inside each forward call, recording the batch sizes.

    CPU kernels round differently for different batch sizes (the first conv alone differs by an ulp
    between a batch of 1 and of 12), and DARK on the flat heatmaps of random weights turns that into
    hundredths of a px (tenths on a few joints). Row by row, a crop's heatmaps are the same bits in
    any batch, so what is left to compare is SharedEstimator's own work: every caller gets exactly
    the rows of its own crops.
    """

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.config = inner, inner.config
        self.batches: list[int] = []

    def forward(self, x, return_attention=False):
        self.batches.append(x.shape[0])
        outs = [self.inner(x[i:i + 1], return_attention=return_attention) for i in range(x.shape[0])]
        if not return_attention:
            return torch.cat(outs)
        maps = [torch.cat(layer) for layer in zip(*(m for _, m in outs))]
        return torch.cat([hm for hm, _ in outs]), maps


@pytest.fixture(scope="module")
def tiny():
    old = torch.get_num_threads()
    torch.set_num_threads(1)   # intra-op threads spin badly when the test machine's cores are shared
    torch.manual_seed(0)
    yield create_model("tp_m_a4", image_size=IMAGE_SIZE)
    torch.set_num_threads(old)


@pytest.fixture
def estimator(tiny):
    return PoseEstimator(RowByRow(tiny), device="cpu")


@pytest.fixture
def shared(estimator):
    made = []

    def make(est=None, **kwargs):
        made.append(SharedEstimator(est or estimator, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


def frames_and_boxes(n: int):
    """n random (160, 200) frames, each with 1 to 3 boxes (some reaching past the border)."""
    rng = np.random.RandomState(0)
    jobs = []
    for i in range(n):
        frame = rng.randint(0, 256, (160, 200, 3)).astype(np.uint8)
        k = 1 + i % 3
        xy = rng.uniform(-20, 150, (k, 2))
        wh = rng.uniform(20, 120, (k, 2))
        jobs.append((frame, np.hstack([xy, wh]), rng.uniform(0.3, 1.0, k)))
    return jobs


def start_callers(fn, args_per_thread):
    """One thread per args calling fn(*args), all released together by a barrier; returns the threads
    and the list that receives, per thread, its result or the exception it raised."""
    barrier = threading.Barrier(len(args_per_thread))
    results: list = [None] * len(args_per_thread)

    def body(i, args):
        barrier.wait()
        try:
            results[i] = fn(*args)
        except BaseException as err:   # noqa: BLE001 - handed to the test thread
            results[i] = err

    threads = [threading.Thread(target=body, args=(i, a)) for i, a in enumerate(args_per_thread)]
    for t in threads:
        t.start()
    return threads, results


def join(threads, timeout=20.0):
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a caller hung"


def run_together(fn, args_per_thread):
    """fn(*args) from one thread per args, started together; each thread's result or exception, in order."""
    threads, results = start_callers(fn, args_per_thread)
    join(threads)
    return results


def assert_same_poses(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4, rtol=0)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5, rtol=0)
        assert a.box == b.box and a.box_score == b.box_score
        if b.attention is None:
            assert a.attention is None
        else:
            np.testing.assert_allclose(a.attention, b.attention, atol=1e-6, rtol=0)


def concurrent_estimates(sh, jobs, attention=False):
    """The jobs dealt round-robin to CALLERS threads that start together; results in the jobs' order."""

    def caller(my_jobs):
        return [sh.estimate(f, b, s, attention=attention) for f, b, s in my_jobs]

    per_thread = run_together(caller, [(jobs[i::CALLERS],) for i in range(CALLERS)])
    for got in per_thread:
        assert not isinstance(got, BaseException), got
    out = [None] * len(jobs)
    for i, got in enumerate(per_thread):
        out[i::CALLERS] = got
    return out


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("flip", [False, True])
def test_four_threads_get_what_the_estimator_gives_each(estimator, shared, attention, flip):
    estimator.flip = flip
    jobs = frames_and_boxes(3 * CALLERS)
    want = [estimator.estimate(f, b, s, attention=attention) for f, b, s in jobs]
    sh = shared(max_wait_ms=200.0)
    assert sh.flip is flip and sh.config is estimator.config and sh.model is estimator.model
    assert sh.device == estimator.device and sh.dtype == estimator.dtype
    estimator.model.batches.clear()
    for got, w in zip(concurrent_estimates(sh, jobs, attention), want):
        assert_same_poses(got, w)
    stats = sh.stats
    assert stats.requests == len(jobs)
    assert stats.crops == sum(len(b) for _, b, _ in jobs)
    assert stats.forwards < stats.requests and stats.mean_batch > 1.0   # really batched
    assert len(estimator.model.batches) == stats.forwards
    assert sum(estimator.model.batches) == stats.crops * (2 if flip else 1)   # flip: mirrored crops too


def test_the_raw_model_agrees_to_float_rounding(tiny, shared):
    """Without RowByRow the batched forward rounds differently (see RowByRow): joint scores still agree
    to 1e-5, while DARK on random weights' flat heatmaps amplifies the rounding without bound on a
    few joints (0.3 px seen), so keypoints are compared by their median difference."""
    est = PoseEstimator(tiny, device="cpu", flip=True)
    jobs = frames_and_boxes(2 * CALLERS)
    want = [est.estimate(f, b, s, attention=True) for f, b, s in jobs]
    sh = shared(est, max_wait_ms=200.0)
    got = concurrent_estimates(sh, jobs, attention=True)
    assert [[p.box for p in g] for g in got] == [[p.box for p in w] for w in want]
    a = [p for g in got for p in g]
    b = [p for w in want for p in w]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], atol=1e-5, rtol=0)
    diff = np.abs(np.array([p.keypoints for p in a]) - np.array([p.keypoints for p in b]))
    assert np.median(diff) < 1e-3
    assert sh.stats.forwards < len(jobs)


def test_attention_and_plain_requests_are_batched_apart(estimator, shared):
    jobs = frames_and_boxes(CALLERS)
    want = [estimator.estimate(f, b, s, attention=i % 2 == 1) for i, (f, b, s) in enumerate(jobs)]
    sh = shared(max_wait_ms=200.0)
    results = run_together(lambda f, b, s, a: sh.estimate(f, b, s, attention=a),
                           [(f, b, s, i % 2 == 1) for i, (f, b, s) in enumerate(jobs)])
    for got, w in zip(results, want):
        assert_same_poses(got, w)
    assert sh.stats.forwards == 2 and sh.stats.requests == CALLERS


def test_max_batch_caps_a_forward_pass(estimator, shared):
    sh = shared(max_batch=2, max_wait_ms=0.0)
    frame, boxes, scores = frames_and_boxes(3)[2]   # 3 boxes -> 2 + 1
    assert_same_poses(sh.estimate(frame, boxes, scores), estimator.estimate(frame, boxes, scores))
    assert (sh.stats.forwards, sh.stats.crops) == (2, 3)


def test_no_boxes_no_forward_and_none_is_the_whole_frame(estimator, shared):
    sh = shared()
    frame = frames_and_boxes(1)[0][0]
    assert sh.estimate(frame, []) == [] and sh.estimate(frame, np.zeros((0, 4))) == []
    assert sh.stats.forwards == 0
    (pose,) = sh.estimate(frame, None)
    assert pose.box == (0.0, 0.0, 200.0, 160.0)
    assert_same_poses([pose], estimator.estimate(frame, None))
    with pytest.raises(TransposeLiveError, match="width or height"):   # validated in the caller's thread
        sh.estimate(frame, [(1, 1, 0, 5)])
    with pytest.raises(TransposeLiveError, match="max_batch"):
        SharedEstimator(estimator, max_batch=0)
    sh.flip = True   # the setting lives in the wrapped estimator
    assert estimator.flip is True and sh.flip is True


class Flaky(nn.Module):
    """The tiny model, failing while `broken` is set."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.config, self.broken = inner, inner.config, False

    def forward(self, x, **kwargs):
        if self.broken:
            raise RuntimeError("boom: the forward pass failed")
        return self.inner(x, **kwargs)


def test_a_forward_error_is_raised_in_each_callers_thread(estimator):
    model = Flaky(estimator.model)
    with SharedEstimator(PoseEstimator(model, device="cpu"), max_wait_ms=200.0) as sh:
        jobs = frames_and_boxes(CALLERS)
        model.broken = True
        results = run_together(sh.estimate, jobs)
        assert all(isinstance(r, RuntimeError) and "boom" in str(r) for r in results)
        model.broken = False   # the worker survives a failed pass
        frame, boxes, scores = jobs[0]
        assert_same_poses(sh.estimate(frame, boxes, scores), estimator.estimate(frame, boxes, scores))


def test_close_fails_waiting_callers_promptly_and_leaves_no_thread(estimator):
    before = threading.active_count()
    sh = SharedEstimator(estimator, max_batch=1000, max_wait_ms=60_000.0)   # requests would wait a minute
    assert threading.active_count() == before + 1
    jobs = frames_and_boxes(CALLERS)
    callers, results = start_callers(sh.estimate, jobs)
    deadline = time.monotonic() + 10
    while sh.stats.waiting < CALLERS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sh.stats.waiting == CALLERS and sh.stats.forwards == 0   # all four wait for the batch to fill
    t0 = time.monotonic()
    sh.close()
    join(callers, timeout=5.0)
    assert time.monotonic() - t0 < 2.0
    assert all(isinstance(r, TransposeLiveError) for r in results)
    assert "closed" in str(results[0])
    assert threading.active_count() == before
    sh.close()   # idempotent
    with pytest.raises(TransposeLiveError, match="closed"):
        sh.estimate(*jobs[0])

