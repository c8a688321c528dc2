"""A soak in words: one plain line per sample while it runs, and at the end rich tables of the checkpoints
(RSS, threads, files, fps and latency per camera over time) and of the cameras (events, staleness)."""

from __future__ import annotations

from transpose_live.bench.soak_plan import Sample, SoakResult


def sample_line(sample: Sample) -> str:
    """`t=35 s before outage 2: RSS 1,061 MB, 25 threads, 12 files | cam1 9.8 fps p95 120 ms 1 rec ...`"""
    head = f"t={sample.t:>5.0f} s{(' ' + sample.label) if sample.label else ''}: RSS {sample.rss_mb:,.0f} MB, " \
           f"{sample.threads} threads, {sample.fds} files"
    cams = "; ".join(f"{c['name']} {_num(c['fps'], '.1f')} fps p95 {_num(c['latency_p95_ms'], '.0f')} ms "
                     f"{c['reconnects']} rec" for c in sample.cameras)
    return f"{head} | {cams}"


def checkpoints(result: SoakResult) -> list[Sample]:
    """The samples worth a row: warm-up, before each outage, the end, and at most one a minute between."""
    rows: list[Sample] = []
    last_t = -1e9
    for s in result.samples:
        if s.label or s.t - last_t >= 60:
            rows.append(s)
            last_t = s.t
    return rows


def tables(result: SoakResult) -> list:
    """Rich tables: the process over time, then the cameras."""
    from rich.table import Table  # deferred: rich only where a table is drawn

    over_time = Table(title="soak: the monitor process over time", expand=False)
    for column in ("t s", "when", "RSS MB", "threads", "files"):
        over_time.add_column(column, justify="left" if column == "when" else "right")
    names = [c["name"] for c in result.cameras]
    for name in names:
        over_time.add_column(f"{name} fps / p95 ms", justify="right")
    for s in checkpoints(result):
        by_name = {c["name"]: c for c in s.cameras}
        cells = [f"{_num(by_name[n]['fps'], '.1f')} / {_num(by_name[n]['latency_p95_ms'], '.0f')}" for n in names]
        over_time.add_row(f"{s.t:.0f}", s.label, f"{s.rss_mb:,.0f}", str(s.threads), str(s.fds), *cells)

    cameras = Table(title="soak: cameras", expand=False)
    for column in ("camera", "frames", "fps", "p95 ms", "outages", "lost / back", "events lost", "stale s max"):
        cameras.add_column(column, justify="left" if column == "camera" else "right")
    for c in result.cameras:
        cameras.add_row(c["name"], str(c["frames"]), _num(c["fps"], ".1f"), _num(c["latency_p95_ms"], ".0f"),
                        str(c["outages"]), f"{c['stream_lost']} / {c['stream_back']}", str(c["events_lost"]),
                        f"{c['stale_s_max']:.2f}" + ("" if c.get("stale_judged", True) else " (not judged)"))
    return [over_time, cameras]


def verdict(result: SoakResult) -> list[str]:
    """The growth after warm-up and what failed, as lines."""
    g = result.growth
    lines = []
    if g:
        lines.append(f"after warm-up ('{g['baseline']}', t={g['baseline_t']:.0f} s): threads {g['threads'][0]} "
                     f"{g['threads'][1]:+d}, files {g['fds'][0]} {g['fds'][1]:+d}, RSS {g['rss_mb'][0]:,.0f} MB "
                     f"{g['rss_mb'][1]:+.1f}")
    unjudged = [c["name"] for c in result.cameras if not c.get("stale_judged", True)]
    if unjudged:
        lines.append(f"staleness not judged for {', '.join(unjudged)}: latency p95 above the limit "
                     f"({result.plan.limits.stale_s:g} s), its jitter is all the measure would see")
    lines += [f"FAIL: {f}" for f in result.failures] or ["soak passed"]
    return lines


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


__all__ = ["sample_line", "checkpoints", "tables", "verdict"]
