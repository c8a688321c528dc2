"""Where the cluster is: `--cluster local | auto | ray://HOST:PORT` (or `cluster:` in cameras.yaml), and
`--replicas N`; checked at the boundary, without importing Ray."""

from __future__ import annotations

import re
from dataclasses import dataclass

from transpose_live.errors import TransposeLiveError

LOCAL, AUTO, CLIENT = "local", "auto", "client"
_CLIENT = re.compile(r"^ray://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})/?$")


@dataclass(frozen=True)
class ClusterAddress:
    """kind: local (start Ray here), auto (join the one `ray start` set up) or client (Ray Client at host:port)."""

    kind: str
    text: str
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        return self.text


def parse_cluster(text: str) -> ClusterAddress:
    """The --cluster value as a ClusterAddress; anything else is one clear error."""
    value = (text or "").strip()
    if value in (LOCAL, AUTO):
        return ClusterAddress(value, value)
    match = _CLIENT.match(value)
    if match is None:
        raise TransposeLiveError(f"--cluster must be local, auto or ray://HOST:PORT, got {text!r}")
    port = int(match.group("port"))
    if not 0 < port < 65536:
        raise TransposeLiveError(f"--cluster {text}: port must be between 1 and 65535")
    host = match.group("host").strip("[]")
    return ClusterAddress(CLIENT, value.rstrip("/"), host, port)


def check_replicas(replicas: int | str | None) -> int | None:
    """--replicas: a whole number >= 1, or None / "auto" for Serve's autoscaling."""
    if replicas is None or replicas == "auto":
        return None
    try:
        count = int(replicas)
    except (TypeError, ValueError):
        count = 0
    if isinstance(replicas, bool) or count < 1 or str(count) != str(replicas).strip():
        raise TransposeLiveError(f"--replicas must be a whole number >= 1 or auto, got {replicas!r}")
    return count


__all__ = ["ClusterAddress", "parse_cluster", "check_replicas", "LOCAL", "AUTO", "CLIENT"]
