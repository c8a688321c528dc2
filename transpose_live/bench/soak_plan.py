"""What a soak runs (SoakPlan, its outage schedule and SoakLimits) and what it gives back (Sample, SoakResult)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from transpose_live.errors import TransposeLiveError

KINDS = ("kill", "freeze")      # a camera killed (SIGKILL) and restarted, or frozen (SIGSTOP) and resumed


@dataclass(frozen=True)
class SoakLimits:
    """Growth allowed after warm-up before the soak fails."""

    thread_growth: int = 2          # OS threads (a leaking reconnect added 2 per outage)
    fd_growth: int = 2              # open file descriptors
    rss_growth_mb: float = 30.0     # resident memory
    stale_s: float = 2.0            # a frame after a reconnect this much older than live
    events_lost: int = 0            # outages not reported as stream_lost ... stream_back


@dataclass
class SoakPlan:
    """What the soak runs. Outages come every `outage_every_s` seconds after warm-up, on the cameras in
    turn, of the `kinds` in turn; each lasts `down_s` (a freeze at least the monitor's timeout + 2 s, so that
    it is noticed). One is scheduled only when a whole period is left after it to recover."""

    cameras: int = 2
    duration_s: float = 120.0       # measured after warm-up (every camera sending frames)
    outage_every_s: float = 25.0
    down_s: float = 5.0
    kinds: tuple[str, ...] = KINDS
    sample_every_s: float = 5.0
    timeout_s: float = 3.0          # the monitor's --timeout: a frozen camera is noticed this fast
    video: Path | None = None       # served in a loop (real people for the model); None: the test pattern
    fps: int = 10
    size: tuple[int, int] = (320, 240)    # the test pattern's
    monitor_args: tuple[str, ...] = ()
    log_dir: Path | None = None     # the monitor's logs (a temporary folder when None)
    warmup_timeout_s: float = 300.0
    warmup_s: float = 0.0           # growth is measured from the checkpoint at or after this (see soak_judge)
    limits: SoakLimits = field(default_factory=SoakLimits)

    def check(self) -> None:
        if self.cameras < 1:
            raise TransposeLiveError(f"cameras must be >= 1, got {self.cameras}")
        for name in ("duration_s", "outage_every_s", "down_s", "sample_every_s", "timeout_s"):
            if not getattr(self, name) > 0:
                raise TransposeLiveError(f"{name.removesuffix('_s')} must be > 0 seconds, got {getattr(self, name)}")
        unknown = set(self.kinds) - set(KINDS)
        if not self.kinds or unknown:
            raise TransposeLiveError(f"outage kinds are {', '.join(KINDS)}; got {', '.join(self.kinds) or 'none'}")
        if self.down_s >= self.outage_every_s:
            raise TransposeLiveError(f"an outage ({self.down_s:g} s) must be shorter than the time between "
                                     f"outages ({self.outage_every_s:g} s)")
        if self.video is not None and not Path(self.video).is_file():
            raise TransposeLiveError(f"video not found: {self.video}")

    def outages(self) -> list[tuple[float, str, int, float]]:
        """(seconds after warm-up, kind, camera index, seconds down) of each scheduled outage."""
        plan, t, k = [], self.outage_every_s, 0
        while t + self.outage_every_s <= self.duration_s + 1e-6:
            kind = self.kinds[k % len(self.kinds)]
            down = max(self.down_s, self.timeout_s + 2.0) if kind == "freeze" else self.down_s
            plan.append((t, kind, k % self.cameras, down))
            t, k = t + self.outage_every_s, k + 1
        return plan


@dataclass
class Sample:
    t: float                # seconds after warm-up
    label: str              # "warm", "before outage N", "end" or "" (a periodic sample)
    rss_mb: float
    threads: int
    fds: int
    cameras: list[dict]     # per camera: name, frames, fps (since the last sample), latency_p95_ms, reconnects


@dataclass
class SoakResult:
    plan: SoakPlan
    samples: list[Sample]
    outages: list[dict]
    cameras: list[dict]
    growth: dict
    monitor_exit: int | None
    failures: list[str]
    warmup_s: float
    memory: dict = field(default_factory=dict)     # the monitor's RSS per mapping group at the end (MB)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        plan = asdict(self.plan)
        plan["video"] = str(self.plan.video) if self.plan.video else None
        plan["log_dir"] = str(self.plan.log_dir) if self.plan.log_dir else None
        return {"ok": self.ok, "failures": self.failures, "plan": plan, "warmup_s": round(self.warmup_s, 1),
                "monitor_exit": self.monitor_exit, "growth": self.growth, "memory_mb": self.memory,
                "cameras": self.cameras, "outages": self.outages, "samples": [asdict(s) for s in self.samples]}


__all__ = ["KINDS", "SoakLimits", "SoakPlan", "Sample", "SoakResult"]
