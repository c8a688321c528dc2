"""Temporal smoothing of keypoints: a Kalman filter per (track, joint), confidence-gated (a track's joints
stacked in one block-diagonal filterpy filter, which computes the same as one filter each).

Model: constant velocity in (x, y), state [x, y, vx, vy], dt from the frame timestamps. Noise is in units
of the person's size s = sqrt(box w × h), so one setting fits near and far people:
- measurement noise R: (MEAS_SIGMA × s / score)², so a less confident joint pulls the estimate less;
- process noise Q: white acceleration with std ACCEL_SIGMA(strength) × s per s², from `strength` 0..1
  (0 turns smoothing off, 1 is the heaviest);
- a joint whose score is below `min_score` (or NaN) is predicted, not measured, for at most
  `max_predict` seconds; after that the raw value is passed on and the joint's filter restarts.
A track's filters restart when it reappears after more than `max_gap` seconds, when time goes backwards,
and on `reset(track_id)` (call it for `Tracker.lost_ids`). Poses without a track id pass through unchanged.

`jitter` and `lag_frames` measure what the smoothing does to a keypoint series.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from transpose_live.errors import TransposeLiveError
from transpose_live.types import Pose

MEAS_SIGMA = 0.05        # keypoint error of a score-1 joint, as a fraction of the person size (measured:
                         # on vtest.avi 0.05 gives a 45 % jitter cut at 0.1 frame lag, strength 0.5)
VEL_SIGMA0 = 2.0         # prior std of a new joint's speed, person sizes per second
ACCEL_SIGMA_MAX = 80.0   # acceleration std at strength → 0, person sizes per s² (barely smoothed)
ACCEL_DECADES = 2.6      # strength 0.5 → 4 sizes/s² (a fast arm wave lags < 0.2 frame at 25 fps); 1 → 0.2


def accel_sigma(strength: float) -> float:
    """Process noise (acceleration std, person sizes per s²) for a smoothing strength in (0, 1]."""
    return ACCEL_SIGMA_MAX * 10.0 ** (-ACCEL_DECADES * strength)


def transition(dt: float) -> np.ndarray:
    """State transition of the constant-velocity model over dt seconds (state [x, y, vx, vy])."""
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    return f


class _TrackState:
    """One track's joints in one filterpy KalmanFilter: state [x, y, vx, vy] per joint, stacked. F, Q, H and R
    are block-diagonal, so the joints stay independent filters (the covariance's blocks between joints stay
    exactly zero while every value is finite; a track whose filter overflows restarts) while the work is a
    handful of matrix products per frame instead of two filter steps per joint: 17 per-joint filters cost ~0.5
    ms a person in Python, and the smoothing stage's interpreter time slowed the model stage beside it
    (vtest.avi: 10.7 fps smoothed vs 11.8 without)."""

    def __init__(self, t: float, n: int):
        self.last_time = t
        self.n = n
        self.kf = KalmanFilter(dim_x=4 * n, dim_z=2 * n)
        self.kf.x = np.zeros(4 * n)
        self.kf.P = np.eye(4 * n)
        self.active = np.zeros(n, bool)                 # joint j has a running filter
        self.predicted_for = np.zeros(n)                # seconds each joint went unmeasured

    def start(self, j: int, x: float, y: float, pos_var: float, vel_var: float) -> None:
        """Joint j's filter (re)started at (x, y) at rest with the given variances."""
        b = slice(4 * j, 4 * j + 4)
        self.kf.x[b] = (x, y, 0.0, 0.0)
        self.kf.P[b, b] = np.diag([pos_var, pos_var, vel_var, vel_var])
        self.active[j] = True
        self.predicted_for[j] = 0.0

    def stop(self, j: int) -> None:
        """Joint j's filter dropped; its block is kept finite and at rest until the next start."""
        b = slice(4 * j, 4 * j + 4)
        self.kf.x[b] = 0.0
        self.kf.P[b, b] = np.eye(4)
        self.active[j] = False

    def predict(self, dt: float, q_joint: np.ndarray) -> None:
        n = self.n
        f = np.eye(4 * n)
        f[4 * np.arange(n)[:, None] + [0, 1], 4 * np.arange(n)[:, None] + [2, 3]] = dt     # x += vx dt, y += vy dt
        q = np.zeros((n, 4, n, 4))
        q[np.arange(n), :, np.arange(n), :] = q_joint                                     # Q per joint, block-diagonal
        self.kf.predict(F=f, Q=q.reshape(4 * n, 4 * n))
        idle = np.flatnonzero(~self.active)              # idle blocks do not grow between starts
        rows = 4 * idle[:, None] + np.arange(4)          # (k, 4) state indices of each idle joint
        self.kf.x[rows] = 0.0
        self.kf.P[rows[:, :, None], rows[:, None, :]] = np.eye(4)

    def update(self, joints: np.ndarray, z: np.ndarray, r: np.ndarray) -> None:
        """Measure the listed joints at z (m, 2) with variances r (m,); the other joints are left as
        predicted (no rows for them in H: exactly the per-joint filters' skipped updates)."""
        rows = (4 * joints[:, None] + np.arange(2)).reshape(-1)        # the x, y of each measured joint
        h = np.zeros((2 * len(joints), 4 * self.n))
        h[np.arange(len(rows)), rows] = 1.0
        self.kf.update(z.reshape(-1), R=np.diag(np.repeat(r, 2)), H=h)


class PoseSmoother:
    def __init__(self, strength: float = 0.5, min_score: float = 0.2, max_gap: float = 0.5,
                 max_predict: float = 0.3) -> None:
        if not 0.0 <= strength <= 1.0:
            raise TransposeLiveError(f"smoothing strength must be between 0 and 1, got {strength}")
        if not 0.0 <= min_score <= 1.0:
            raise TransposeLiveError(f"min_score must be between 0 and 1, got {min_score}")
        if max_gap <= 0 or max_predict < 0:
            raise TransposeLiveError("max_gap must be > 0 and max_predict >= 0 seconds")
        self.strength = float(strength)
        self.min_score = float(min_score)
        self.max_gap = float(max_gap)
        self.max_predict = float(max_predict)
        self._tracks: dict[int, _TrackState] = {}

    def reset(self, track_id: int | None = None) -> None:
        """Forget one track's filters, or all of them."""
        if track_id is None:
            self._tracks.clear()
        else:
            self._tracks.pop(track_id, None)

    def smooth(self, poses: list[Pose], timestamp: float) -> list[Pose]:
        """New Pose objects with smoothed keypoints (same order, scores, boxes and track ids)."""
        timestamp = float(timestamp)
        if self.strength == 0.0:
            return [replace(p) for p in poses]
        out = [self._smooth_one(p, p.track_id, timestamp) if p.track_id is not None else replace(p) for p in poses]
        # forget tracks not seen for longer than max_gap: they would restart anyway
        for tid in [t for t, s in self._tracks.items() if timestamp - s.last_time > self.max_gap]:
            del self._tracks[tid]
        return out

    def _smooth_one(self, pose: Pose, track_id: int, t: float) -> Pose:
        kp = np.asarray(pose.keypoints, np.float64)
        scores = np.asarray(pose.scores, np.float64)
        n = len(kp)
        size = _person_size(pose, kp) if n else 0.0
        if n == 0 or not np.isfinite(size):
            self._tracks.pop(track_id, None)       # no joints (a changed joint count) or no scale: restart
            return replace(pose, keypoints=kp.astype(np.float32))
        state = self._tracks.get(track_id)
        if state is not None:
            dt = t - state.last_time
            if dt <= 0 or dt > self.max_gap or state.n != n:
                state = None
        if state is None:
            state = _TrackState(t, n)
            self._tracks[track_id] = state
            dt = 0.0
        state.last_time = t

        r_unit = (MEAS_SIGMA * size) ** 2
        if dt > 0 and state.active.any():
            state.predict(dt, Q_discrete_white_noise(dim=2, dt=dt, var=(accel_sigma(self.strength) * size) ** 2,
                                                     block_size=2, order_by_dim=False))
        with np.errstate(invalid="ignore"):
            measured = np.isfinite(kp).all(1) & np.isfinite(scores) & (scores >= self.min_score)
        score = np.maximum(np.nan_to_num(scores, nan=0.0), 1e-3)
        update = measured & state.active
        for j in np.flatnonzero(measured & ~state.active):       # a filter starts at its first confident measurement
            state.start(int(j), kp[j, 0], kp[j, 1], r_unit / score[j] ** 2, (VEL_SIGMA0 * size) ** 2)
        unmeasured = np.flatnonzero(state.active & ~measured)
        state.predicted_for[unmeasured] += dt
        for j in unmeasured[state.predicted_for[unmeasured] > self.max_predict]:
            state.stop(int(j))                  # unmeasured too long: pass the raw value on, restart later
        joints = np.flatnonzero(update)
        if joints.size:
            state.update(joints, kp[joints], r_unit / score[joints] ** 2)
            state.predicted_for[joints] = 0.0
        if not (np.isfinite(state.kf.x).all() and np.isfinite(state.kf.P).all()):
            # a keypoint near the float64 limit overflowed: in one stacked filter 0 x inf would spread NaN to
            # every joint of the track, so the track restarts and this frame passes raw
            self._tracks.pop(track_id, None)
            return replace(pose, keypoints=kp.astype(np.float32))
        result = kp.copy()
        shown = update | (state.active & ~measured)             # filtered, or predicted while unmeasured
        result[shown] = state.kf.x.reshape(n, 4)[shown, :2]
        return replace(pose, keypoints=result.astype(np.float32))


def _person_size(pose: Pose, kp: np.ndarray) -> float:
    """sqrt(w × h) of the pose's box, else of its keypoints' extent (at least 1 pixel)."""
    if pose.box is not None and np.all(np.isfinite(pose.box)):
        w, h = float(pose.box[2]), float(pose.box[3])
    else:
        finite = kp[np.all(np.isfinite(kp), axis=1)]
        w, h = (finite.max(0) - finite.min(0)) if len(finite) >= 2 else (1.0, 1.0)
    return max(1.0, float(np.sqrt(max(w, 1.0) * max(h, 1.0))))


def jitter(keypoints_seq: np.ndarray) -> float:
    """Mean norm of the second difference (pixels per frame²) of a (T, J, 2) series, ignoring NaN."""
    seq = np.asarray(keypoints_seq, np.float64)
    if seq.ndim != 3 or seq.shape[2] != 2:
        raise TransposeLiveError(f"jitter needs a (T, J, 2) keypoint series, got shape {seq.shape}")
    if len(seq) < 3:
        return float("nan")
    acc = np.linalg.norm(seq[2:] - 2 * seq[1:-1] + seq[:-2], axis=-1)   # (T-2, J), NaN where any was NaN
    acc = acc[np.isfinite(acc)]
    return float(acc.mean()) if acc.size else float("nan")


def lag_frames(raw: np.ndarray, smoothed: np.ndarray, max_lag: int = 5) -> float:
    """The shift in frames (positive = smoothed behind raw) that best aligns smoothed[t + shift] with raw[t]:
    least squares over whole-frame shifts, refined to a fraction of a frame by a parabola through the best
    three (interpolating a noisy series instead would favour half frames). NaN entries are ignored."""
    raw = np.asarray(raw, np.float64)
    smoothed = np.asarray(smoothed, np.float64)
    if raw.shape != smoothed.shape or raw.ndim < 1:
        raise TransposeLiveError(f"lag_frames needs two series of one shape, got {raw.shape} and {smoothed.shape}")
    n, max_lag = len(raw), int(max_lag)
    if max_lag < 1 or n <= 2 * (max_lag + 1) + 2:
        raise TransposeLiveError(f"lag_frames needs max_lag >= 1 and more than {2 * max_lag + 4} frames")
    raw, smoothed = raw.reshape(n, -1), smoothed.reshape(n, -1)
    t = np.arange(max_lag + 1, n - max_lag - 1)   # the same frames for every shift, so errors compare
    shifts = np.arange(-max_lag - 1, max_lag + 2)
    per_shift: list[float] = []
    for k in shifts:
        diff = smoothed[t + k] - raw[t]
        diff = diff[np.isfinite(diff)]
        per_shift.append(float(np.mean(diff**2)) if diff.size else np.inf)
    errors = np.asarray(per_shift)
    i = int(np.argmin(errors[1:-1])) + 1          # best within ±max_lag, with a neighbour on each side
    e0, e1, e2 = errors[i - 1:i + 2]
    curve = e0 - 2 * e1 + e2
    offset = 0.5 * (e0 - e2) / curve if curve > 0 and np.isfinite(curve) else 0.0
    return float(shifts[i] + np.clip(offset, -0.5, 0.5))
