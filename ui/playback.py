"""Playback: when each of the pipeline's frames goes to the screen (plain threads, no Qt here).

A file plays by its own clock: frames are paced by their timestamps at the chosen speed (None: as fast as the
pipeline goes). Paused, a frame is held back until a step, play, seek or stop lets it through: the pipeline's
bounded queues then hold its stages, so a file loses nothing. A seek bumps the generation; frames of the
pipeline it replaces are dropped by it. At most MAX_IN_FLIGHT frames wait in the GUI's queue: a file waits for
room, a live source drops the frame instead (the newest is what counts). Live sources are never paused, paced
or sought: they show the newest frame.

Every method is thread-safe and waits only where it says so: the controls are called from the GUI thread
(and return at once), `take_start` from the worker's thread, `hold`, `pace`, `wait_for_room` and `admit` from
the pipeline's last thread.
"""

from __future__ import annotations

import threading
import time

MAX_IN_FLIGHT = 2          # frames emitted but not yet delivered to the GUI thread
STUCK_AFTER = 2.0          # seconds without a delivery: the GUI's receipts are lost, emit anyway


class Playback:
    """The file's clock and the frames' way to the screen. stop: the worker's stop event (every wait ends
    with it). start: seconds into the file of the first pipeline."""

    def __init__(self, stop: threading.Event, *, speed: float | None = 1.0, paused: bool = False,
                 start: float | None = None):
        self._wake = threading.Condition()    # a held or paced frame waits on it
        self._stop = stop
        self.live = False                     # set when the source is opened
        self._speed = speed
        self._paused = bool(paused)
        self._steps = 1 if paused else 0      # frames let through while paused
        self._generation = 0                  # bumped by a seek: frames of older pipelines are dropped
        self._seek_to: float | None = float(start) if start else None
        self._restart = False                 # a seek asks for a new pipeline
        self._anchor: tuple[float, float] | None = None   # (monotonic clock, frame timestamp) of pacing
        self._in_flight = 0
        self._last_emit = 0.0

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def speed(self) -> float | None:
        return self._speed

    # ------------------------------------------------------------------------------- the GUI's controls

    def pause(self) -> None:
        with self._wake:
            if not self.live:
                self._paused, self._steps = True, 0

    def play(self) -> None:
        with self._wake:
            self._paused, self._anchor = False, None
            self._wake.notify_all()

    def set_speed(self, speed: float | None) -> None:
        """Playback rate of a file: 0.25 .. 4, None: as fast as the pipeline goes."""
        with self._wake:
            self._speed, self._anchor = speed, None

    def step_forward(self, frames: int = 1) -> None:
        """Pause; paused already, let `frames` more frames through."""
        with self._wake:
            if self._paused:
                self._steps += frames
            else:
                self._paused, self._steps = True, 0
            self._wake.notify_all()

    def seek(self, seconds: float, paused: bool | None = None) -> int:
        """Ask for a new pipeline from `seconds` into the file (its first frame is shown even while paused).
        Returns the new generation: pipelines of older ones are to be stopped."""
        with self._wake:
            self._seek_to = max(0.0, float(seconds))
            self._generation += 1
            if paused is not None:
                self._paused = paused
            self._steps = 1 if self._paused else 0
            self._anchor = None
            self._restart = True
            self._wake.notify_all()
            return self._generation

    def wake(self) -> None:
        """End every wait now (the stop event is set)."""
        with self._wake:
            self._wake.notify_all()

    # --------------------------------------------------------------------------------- the worker's thread

    def take_start(self) -> tuple[float | None, int]:
        """(where the next pipeline starts: None to go on, its generation); the seek asked for is taken."""
        with self._wake:
            start, self._seek_to = self._seek_to, None
            self._restart = False
            return start, self._generation

    @property
    def restart(self) -> bool:
        """Whether a seek came since take_start (the pipeline that ended was stopped for it)."""
        with self._wake:
            return self._restart

    def current(self, generation: int) -> bool:
        """Whether no seek came after `generation`'s."""
        with self._wake:
            return generation == self._generation

    # ------------------------------------------------------------------------------ the pipeline's thread

    def hold(self, generation: int) -> bool:
        """Wait while paused (until a step, play, seek or stop); False when the frame must be dropped."""
        with self._wake:
            while (self._paused and self._steps <= 0 and generation == self._generation
                   and not self._stop.is_set()):
                self._wake.wait(0.25)
            if generation != self._generation or self._stop.is_set():
                return False
            if self._paused:
                self._steps -= 1
            return True

    def pace(self, timestamp: float, generation: int) -> bool:
        """Wait until the frame is due by the file's clock at the chosen speed; False when a seek, pause
        or stop came meanwhile (the wait is cut short)."""
        with self._wake:
            speed = self._speed
            if speed is None:
                return True
            now = time.monotonic()
            if self._anchor is None or timestamp < self._anchor[1]:
                self._anchor = (now, timestamp)
                return True
            delay = self._anchor[0] + (timestamp - self._anchor[1]) / speed - now
            if delay < -0.5:                 # the pipeline fell behind: go on from here, do not rush
                self._anchor = (now, timestamp)
            while delay > 0 and generation == self._generation and not self._stop.is_set():
                self._wake.wait(min(delay, 0.25))
                if self._paused or self._anchor is None:
                    break
                delay = self._anchor[0] + (timestamp - self._anchor[1]) / speed - time.monotonic()
            return generation == self._generation and not self._stop.is_set()

    def wait_for_room(self, generation: int) -> None:
        """A file loses nothing: wait until the window has taken the frames in flight (at most STUCK_AFTER s;
        a seek or stop ends the wait)."""
        with self._wake:
            self._wake.wait_for(lambda: self._in_flight < MAX_IN_FLIGHT or self._stop.is_set()
                                or generation != self._generation, timeout=STUCK_AFTER)

    def admit(self, now: float) -> bool:
        """Whether this frame goes to the GUI (counted in flight) or is dropped: the queue is full and the GUI
        is taking frames. A paused frame always goes; so does one after STUCK_AFTER s without a delivery."""
        with self._wake:
            stuck = self._in_flight >= MAX_IN_FLIGHT and now - self._last_emit > STUCK_AFTER
            if self._in_flight >= MAX_IN_FLIGHT and not stuck and not self._paused:
                return False
            self._in_flight = 1 if stuck else self._in_flight + 1
            self._last_emit = now
            return True

    def delivered(self) -> None:
        """The GUI thread took a frame."""
        with self._wake:
            self._in_flight = max(0, self._in_flight - 1)
            self._wake.notify_all()
