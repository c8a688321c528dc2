"""Kalman keypoint smoothing on synthetic noisy trajectories, and the jitter / lag measurements."""

from __future__ import annotations

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.live.smoothing import PoseSmoother, jitter, lag_frames
from transpose_live.types import Pose

FPS = 30.0
J = 17
SIZE = 200.0            # person box side in pixels
NOISE = 3.0             # keypoint noise std in pixels (1.5 % of the person)


def walk(frames: int, velocity=(120.0, 40.0), seed: int = 0) -> np.ndarray:
    """(T, 17, 2) true joint positions moving at a constant velocity (pixels per second)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(100, 300, (J, 2))
    t = np.arange(frames)[:, None, None] / FPS
    return start[None] + np.asarray(velocity)[None, None] * t


def pose(kp: np.ndarray, scores=None, track_id: int | None = 1, x: float = 100.0) -> Pose:
    scores = np.full(J, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Pose(np.asarray(kp, np.float32), scores, box=(x, 100.0, SIZE, SIZE), track_id=track_id)


def smooth_series(smoother: PoseSmoother, raw: np.ndarray, scores=None) -> np.ndarray:
    out = []
    for i, kp in enumerate(raw):
        s = None if scores is None else scores[i]
        out.append(smoother.smooth([pose(kp, s)], i / FPS)[0].keypoints)
    return np.asarray(out, np.float64)


def test_smoothing_reduces_error_and_jitter_without_lag():
    true = walk(120)
    raw = true + np.random.default_rng(1).normal(0, NOISE, true.shape)
    smoothed = smooth_series(PoseSmoother(strength=0.5), raw)
    err = lambda x: np.sqrt(np.mean(np.sum((x[10:] - true[10:]) ** 2, -1)))   # after a short start-up
    assert err(smoothed) < 0.8 * err(raw)
    assert jitter(smoothed) < 0.6 * jitter(raw)            # > 40 % less frame-to-frame acceleration
    assert abs(lag_frames(raw, smoothed)) < 1.0
    assert abs(lag_frames(true, smoothed)) < 0.3


def test_stronger_smoothing_gives_less_jitter_and_zero_turns_it_off():
    true = walk(90)
    raw = true + np.random.default_rng(2).normal(0, NOISE, true.shape)
    j = [jitter(smooth_series(PoseSmoother(strength=s), raw)) for s in (0.2, 0.5, 0.8)]
    assert j[0] > j[1] > j[2]
    np.testing.assert_allclose(smooth_series(PoseSmoother(strength=0.0), raw), raw.astype(np.float32))


def test_low_score_and_missing_joints_are_predicted():
    true = walk(40)
    raw = true + np.random.default_rng(3).normal(0, 1.0, true.shape)
    scores = np.full((40, J), 0.9)
    raw[30, 9] += 80.0          # a wrong wrist reported with a low score
    scores[30, 9] = 0.05
    raw[31, 10] = np.nan        # a wrist not found at all
    scores[31, 10] = np.nan
    smoothed = smooth_series(PoseSmoother(strength=0.5, min_score=0.2), raw, scores)
    assert np.linalg.norm(smoothed[30, 9] - true[30, 9]) < 5.0      # predicted on the path, not at the outlier
    assert np.linalg.norm(smoothed[31, 10] - true[31, 10]) < 5.0
    assert np.all(np.isfinite(smoothed[31, 10]))


def test_a_joint_never_seen_confidently_passes_through_raw():
    kp = walk(5)
    scores = np.full((5, J), 0.9)
    scores[:, 4] = 0.1
    kp[:, 3] = np.nan
    smoothed = smooth_series(PoseSmoother(), kp, scores)
    np.testing.assert_allclose(smoothed[:, 4], kp[:, 4].astype(np.float32))
    assert np.all(np.isnan(smoothed[:, 3]))


def test_measurement_weight_follows_the_score():
    still = np.full((J, 2), 150.0)
    moved = still + [20.0, 0.0]
    shifts = {}
    for score in (1.0, 0.3):
        sm = PoseSmoother(strength=0.5)
        for i in range(20):
            sm.smooth([pose(still)], i / FPS)
        out = sm.smooth([pose(moved, np.full(J, score))], 20 / FPS)[0].keypoints
        shifts[score] = float(out[0, 0] - 150.0)
    assert 0 < shifts[0.3] < 0.5 * shifts[1.0]


def test_filters_restart_after_reset_or_a_long_gap():
    true = walk(30)
    raw = true + np.random.default_rng(4).normal(0, NOISE, true.shape)
    jump = raw[20] + 50.0       # a different place: a restarted filter starts exactly there

    def next_output(smoother, t):
        return smoother.smooth([pose(jump)], t)[0].keypoints

    sm = PoseSmoother()
    smooth_series(sm, raw[:20])
    assert not np.allclose(next_output(sm, 20 / FPS), jump)          # continues: pulled toward the path
    sm = PoseSmoother()
    smooth_series(sm, raw[:20])
    sm.reset(1)                                                      # e.g. for Tracker.lost_ids
    np.testing.assert_allclose(next_output(sm, 20 / FPS), jump.astype(np.float32))
    sm = PoseSmoother(max_gap=0.5)
    smooth_series(sm, raw[:20])
    np.testing.assert_allclose(next_output(sm, 19 / FPS + 0.6), jump.astype(np.float32))   # back after 0.6 s
    sm = PoseSmoother()
    smooth_series(sm, raw[:20])
    sm.reset()
    np.testing.assert_allclose(next_output(sm, 20 / FPS), jump.astype(np.float32))


def test_tracks_are_separate_and_untracked_poses_pass_through():
    sm = PoseSmoother()
    a, b = walk(10, seed=5), walk(10, velocity=(-60.0, 0.0), seed=6) + 300
    for i in range(10):
        untracked = pose(a[i] + 7, track_id=None)
        inputs = [pose(a[i], track_id=1), untracked, pose(b[i], track_id=2, x=400.0)]
        out = sm.smooth(inputs, i / FPS)
        assert [p.track_id for p in out] == [1, None, 2]
        assert all(o is not p for o, p in zip(out, inputs))
        np.testing.assert_array_equal(out[1].keypoints, untracked.keypoints)
        assert out[2].box == (400.0, 100.0, SIZE, SIZE)
    # each track follows its own path (noise-free input: the estimates stay on it)
    np.testing.assert_allclose(out[0].keypoints, a[-1], atol=0.5)
    np.testing.assert_allclose(out[2].keypoints, b[-1], atol=0.5)


def test_jitter_measures_second_differences_ignoring_nan():
    line = np.arange(10, dtype=float)[:, None, None] * np.ones((1, 2, 2))
    assert jitter(line) == pytest.approx(0.0)
    spike = line.copy()
    spike[5, 0] += [3.0, 4.0]        # a 5 px spike: second differences 5, 10, 5 for that joint
    assert jitter(spike) == pytest.approx((5 + 10 + 5) / (8 * 2))
    spike[5, 1] = np.nan             # NaN joint-frames are left out
    assert jitter(spike) == pytest.approx((5 + 10 + 5) / (8 * 2 - 3))
    with pytest.raises(TransposeLiveError):
        jitter(np.zeros((5, 3)))


def test_lag_frames_finds_whole_and_fractional_delays():
    t = np.arange(200, dtype=float)
    raw = np.stack([np.sin(t / 9.0), np.cos(t / 13.0)], -1)[:, None, :]
    delayed = np.roll(raw, 2, axis=0)
    assert lag_frames(raw, delayed) == pytest.approx(2.0, abs=0.051)
    half = np.stack([np.sin((t - 0.5) / 9.0), np.cos((t - 0.5) / 13.0)], -1)[:, None, :]
    assert lag_frames(raw, half) == pytest.approx(0.5, abs=0.051)
    assert lag_frames(raw, np.roll(raw, -1, axis=0)) == pytest.approx(-1.0, abs=0.051)
    with pytest.raises(TransposeLiveError):
        lag_frames(raw, raw[:-1])


@pytest.mark.parametrize("kwargs", [{"strength": 1.5}, {"min_score": -0.1}, {"max_gap": 0.0}])
def test_bad_options_raise(kwargs):
    with pytest.raises(TransposeLiveError):
        PoseSmoother(**kwargs)


class PerJointSmoother:
    """The smoothing written the plain way, one filterpy filter per joint (the code before the joints of a
    track were stacked into one filter): the reference the stacked filter must equal."""

    def __init__(self, strength=0.5, min_score=0.2, max_gap=0.5, max_predict=0.3):
        self.strength, self.min_score, self.max_gap, self.max_predict = strength, min_score, max_gap, max_predict
        self.tracks = {}

    def smooth(self, p: Pose, t: float) -> np.ndarray:
        from filterpy.common import Q_discrete_white_noise
        from filterpy.kalman import KalmanFilter

        from transpose_live.live.smoothing import MEAS_SIGMA, VEL_SIGMA0, accel_sigma, transition

        kp, sc = np.asarray(p.keypoints, np.float64), np.asarray(p.scores, np.float64)
        last = self.tracks.get(p.track_id)
        dt = t - last[0] if last else 0.0
        if last is None or dt <= 0 or dt > self.max_gap or len(last[1]) != len(kp):
            last, dt = [t, [None] * len(kp), np.zeros(len(kp))], 0.0
        last[0] = t
        self.tracks[p.track_id] = last
        size = float(np.sqrt(p.box[2] * p.box[3]))
        r_unit = (MEAS_SIGMA * size) ** 2
        q = Q_discrete_white_noise(dim=2, dt=dt, var=(accel_sigma(self.strength) * size) ** 2, block_size=2,
                                   order_by_dim=False)
        out = kp.copy()
        for j in range(len(kp)):
            measured = bool(np.isfinite(kp[j]).all() and np.isfinite(sc[j]) and sc[j] >= self.min_score)
            kf = last[1][j]
            if kf is None:
                if measured:
                    kf = last[1][j] = KalmanFilter(dim_x=4, dim_z=2)
                    kf.x = np.array([kp[j, 0], kp[j, 1], 0.0, 0.0])
                    kf.H = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
                    var = r_unit / max(sc[j], 1e-3) ** 2
                    kf.P = np.diag([var, var, (VEL_SIGMA0 * size) ** 2, (VEL_SIGMA0 * size) ** 2])
                    last[2][j] = 0.0
                continue
            if dt > 0:
                kf.predict(F=transition(dt), Q=q)
            if measured:
                kf.update(kp[j], R=np.eye(2) * r_unit / max(sc[j], 1e-3) ** 2)
                last[2][j] = 0.0
            else:
                last[2][j] += dt
                if last[2][j] > self.max_predict:
                    last[1][j] = None
                    continue
            out[j] = kf.x[:2]
        return out


def test_the_stacked_filter_equals_one_filter_per_joint():
    """Two tracks over 150 frames with noise, low scores, missing joints, joints unseen for longer than
    max_predict, an uneven frame clock, a gap, a step back in time, a reset, a pose with no joints and one
    with fewer joints (each restarts the track): the same output as per-joint filters to float32 rounding."""
    rng = np.random.default_rng(3)
    truth = {1: walk(150, seed=1), 2: walk(150, velocity=(-60.0, 90.0), seed=2)}
    ours, ref = PoseSmoother(strength=0.6), PerJointSmoother(strength=0.6)
    t, worst, predicted = 0.0, 0.0, 0
    for i in range(150):
        t += rng.uniform(0.6, 1.4) / FPS
        when = t - 0.5 / FPS if i == 100 else t              # frame 100: a step back in time
        if i == 40:
            ours.reset(1)
            ref.tracks.pop(1)
        for tid, series in truth.items():
            if tid == 2 and 60 <= i < 80:                    # 20 frames away: the track restarts after
                continue
            kp = series[i] + rng.normal(0, NOISE, (J, 2))
            scores = rng.uniform(0.0, 1.0, J).astype(np.float32)
            scores[(i // 15) % J] = 0.05                     # one joint unsure for 15 frames (> max_predict)
            if i % 7 == 0:
                kp[rng.integers(J)] = np.nan
            if tid == 1 and i == 120:                        # no joints at all, then ...
                kp, scores = kp[:0], scores[:0]
            if tid == 1 and 121 <= i < 125:                  # ... a model with fewer joints for a while
                kp, scores = kp[:13], scores[:13]
            p = pose(kp, scores, track_id=tid, x=100.0 + 10 * tid)
            got = ours.smooth([p], when)[0].keypoints.astype(np.float64)
            want = ref.smooth(p, when)
            both = np.isfinite(want)
            assert (np.isfinite(got) == both).all()
            worst = max(worst, float(np.abs(got[both] - want[both]).max(initial=0.0)))
            predicted += int(((scores < 0.2) & np.isfinite(kp).all(1) & (np.abs(got - kp).max(1) > 0)).sum()
                             if len(kp) else 0)
    assert worst < 1e-3, worst                               # float32 output: ~3e-5 at these coordinates
    assert predicted > 50                                    # unsure joints were really predicted, not passed on


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")     # the input's own overflow, on purpose
def test_an_overflowing_keypoint_restarts_its_track_instead_of_spreading_nan():
    """In one stacked filter 0 x inf would turn every joint NaN; the track restarts instead."""
    smoother = PoseSmoother()
    truth = walk(6)
    for i in range(3):
        smoother.smooth([pose(truth[i])], i / FPS)
    huge = Pose(truth[3].astype(np.float64), np.full(J, 0.9), box=(100.0, 100.0, SIZE, SIZE), track_id=1)
    for big in (1e307, 1.7e308):                      # huge, and huge enough to overflow in the next predict
        huge.keypoints[0] = (big, big)
        smoother.smooth([huge], 3 / FPS)
        after = np.array([smoother.smooth([pose(truth[i])], i / FPS)[0].keypoints for i in (4, 5)])
        assert np.isfinite(after[:, 1:]).all(), big       # the other joints: as they were, not NaN
        assert np.abs(after[:, 1:] - truth[[4, 5], 1:]).max() < 5 * NOISE
        smoother.reset()
