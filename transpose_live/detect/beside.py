"""The person detector on a thread of its own, beside the pose step (`--detect-async`).

With the detector in series, a frame that carries a detection waits for it: on the GPU machine the pose
step takes ~11 ms for 18 persons and the SSD on the CPU ~40 ms, so those frames set the latency (p95 53 ms
on the 1080p crowd clip, docs/gpu.md). Here the detector works on a copy of a frame while the pose step
goes on following the persons it knows; its boxes join the frame after it finishes (one or two frames
late: walkers move a few pixels, the crop's margin covers that). At most one detection is in flight.
"""

from __future__ import annotations

import threading

import numpy as np

from transpose_live.detect.base import Detections, Detector, detector_lock

_Result = tuple[Detections | None, BaseException | None]   # (detections, None) or (None, the error)


class DetectorBeside:
    """`submit(image)` starts a detection when none is running; `take()` hands over a finished one once;
    `detect_now(image)` is for frames with nobody to follow (the one in flight, else this frame, waited for).
    A detector error is raised by the call that would have handed its result over."""

    def __init__(self, detector: Detector):
        self.detector = detector
        self._detector_lock = detector_lock(detector)
        self.calls = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._result: _Result | None = None
        self._generation = 0         # bumped by forget(): a detection of an older stream position is dropped

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, image: np.ndarray) -> bool:
        """Start detecting `image` (copied: the caller may draw on it) unless a detection is running."""
        if self.busy():
            return False
        generation, frame = self._generation, np.array(image, copy=True)
        self.calls += 1

        def work() -> None:
            result: _Result
            try:
                result = (self._detect(frame), None)
            except BaseException as exc:   # noqa: BLE001 - handed to the caller's thread by take()
                result = (None, exc)
            with self._lock:
                if generation == self._generation:
                    self._result = result

        # not a daemon: the interpreter waits for it at exit. A daemon thread still inside the detector's
        # native code when the process ends aborts it ("terminate called without an active exception")
        self._thread = threading.Thread(target=work, name="detector")
        self._thread.start()
        return True

    def take(self) -> Detections | None:
        """The detections finished since the last take(), or None."""
        with self._lock:
            result, self._result = self._result, None
        if result is None:
            return None
        found, error = result
        if error is not None:
            raise error
        return found

    def wait(self) -> Detections | None:
        """The detection in flight, waited for (None when there is none)."""
        if self._thread is not None:
            self._thread.join()
        return self.take()

    def detect_now(self, image: np.ndarray) -> Detections:
        found = self.wait()
        if found is None:
            self.calls += 1
            found = self._detect(image)
        return found

    def _detect(self, image: np.ndarray) -> Detections:
        with self._detector_lock:
            return self.detector.detect(image)

    def forget(self) -> None:
        """Drop what is in flight or waiting (the stream jumped: a seek, a new source)."""
        with self._lock:
            self._generation += 1
            self._result = None


__all__ = ["DetectorBeside"]
