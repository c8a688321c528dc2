"""Measure `transpose-live monitor` on N local test cameras: fps per camera, resident memory at minute 1
and at the end, one camera killed and restarted in the middle, the time SIGTERM takes to stop it all.

    python tools/measure/measure_monitor.py --cameras 4 --minutes 2 [-- MONITOR OPTIONS...]

Needs GStreamer's RTSP server (see tests/rtsp_server.py). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from rtsp_server import RtspServer, available  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def frames(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if '"event"' not in line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("monitor_args", nargs="*", help="extra options for `transpose-live monitor`")
    args = ap.parse_args()
    ok, why = available()
    if not ok:
        sys.exit(f"no test RTSP server here: {why}")
    servers = [RtspServer(paths=(f"/cam{i}",)) for i in range(1, args.cameras + 1)]
    logs = Path(tempfile.mkdtemp(prefix="monitor-logs-"))
    try:
        urls = [s.url(s.paths[0]) for s in servers]
        proc = subprocess.Popen([sys.executable, "-m", "transpose_live", "monitor", *urls, "--log-dir", str(logs),
                                 "--timeout", "3", *args.monitor_args], stderr=subprocess.PIPE, text=True)
        total = args.minutes * 60
        t0 = time.monotonic()
        rss = {}
        killed = None
        while time.monotonic() - t0 < total and proc.poll() is None:
            time.sleep(1)
            elapsed = time.monotonic() - t0
            if "minute_1" not in rss and elapsed >= 60:
                rss["minute_1"] = rss_mb(proc.pid)
                counts_1 = [frames(logs / f"cam{i}.jsonl") for i in range(1, args.cameras + 1)]
            if killed is None and elapsed >= total / 2 and len(servers) > 1:
                servers[1].kill()
                killed = time.monotonic()
                others_before = [frames(logs / f"cam{i}.jsonl") for i in (1, 3, 4)[: args.cameras - 1]]
            if killed is not None and killed > 0 and time.monotonic() - killed >= 10:
                others_after = [frames(logs / f"cam{i}.jsonl") for i in (1, 3, 4)[: args.cameras - 1]]
                servers[1].start()
                killed = -1.0
        rss["end"] = rss_mb(proc.pid)
        counts_end = [frames(logs / f"cam{i}.jsonl") for i in range(1, args.cameras + 1)]
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        stop_s = time.monotonic() - t_stop
        elapsed_2 = total - 60
        print(json.dumps({
            "cameras": args.cameras, "minutes": args.minutes, "exit": proc.returncode,
            "rss_mb_minute_1": round(rss.get("minute_1", float("nan")), 1), "rss_mb_end": round(rss["end"], 1),
            "fps_after_minute_1": [round((e - b) / elapsed_2, 2) for b, e in zip(counts_1, counts_end)],
            "others_frames_during_outage": [a - b for a, b in zip(others_after, others_before)],
            "stop_s": round(stop_s, 2), "status": err.strip().splitlines()[-args.cameras:],
        }, indent=1))
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
