"""Joining Ray: `local` starts an instance on this machine kept on the loopback address, `auto` joins the one
`ray start` set up, `ray://HOST:PORT` joins a remote cluster through Ray Client. A cluster that cannot be
reached is one TransposeLiveError that names the address (the CLI prints it as one `error:` line).

Loopback. Ray picks the node's address from the network interface (it asks the kernel which interface would
route to a public address). A local instance must not listen there: `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`
makes Ray use 127.0.0.1 as the node address (what it does on laptops), and it is read when Ray is first
imported, so `loopback_environment()` runs before that; the node address is also given to ray.init.
Usage statistics (sent to Ray's servers by default) are switched off for a local instance."""

from __future__ import annotations

import logging
import os
import socket
import sys

from transpose_live.errors import TransposeLiveError
from transpose_live.monitor.cluster.address import AUTO, CLIENT, LOCAL, ClusterAddress

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
NAMESPACE = "transpose-live"
PROBE_S = 5.0          # a ray:// address must accept a TCP connection this fast, else it is unreachable
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def loopback_environment() -> None:
    """Set what keeps a local Ray on 127.0.0.1 and quiet (call before Ray is imported; the processes Ray
    starts inherit it). Raises when Ray was imported before with the interface address chosen."""
    os.environ.update(LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
        raise TransposeLiveError("Ray was imported before the loopback settings were made; a local cluster "
                                 "would listen on the network (set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 first)")


def probe(host: str, port: int, timeout: float = PROBE_S) -> str | None:
    """None when host:port accepts a TCP connection within `timeout`, else the reason in words."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.timeout:
        return f"no answer in {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def connect(address: ClusterAddress, num_cpus: float | None = None) -> None:
    """ray.init for `address`; local: a new instance with `num_cpus` logical CPUs (None: this machine's)."""
    if address.kind == LOCAL:
        loopback_environment()
    import ray  # deferred: Ray is an optional extra and heavy to import

    if ray.is_initialized():
        return
    try:
        if address.kind == LOCAL:
            ray.init(address="local", num_cpus=int(num_cpus) if num_cpus else None, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING, namespace=NAMESPACE,
                     _node_ip_address=LOOPBACK)
        elif address.kind == AUTO:
            ray.init(address=AUTO, log_to_driver=False, logging_level=logging.WARNING, namespace=NAMESPACE)
        else:
            assert address.kind == CLIENT and address.host is not None and address.port is not None
            reason = probe(address.host, address.port)
            if reason is not None:
                raise TransposeLiveError(f"cannot reach the Ray cluster at {address}: {reason}")
            ray.init(address=address.text, namespace=NAMESPACE)
    except TransposeLiveError:
        raise
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TransposeLiveError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def node_addresses() -> list[str]:
    """The addresses of the cluster's live nodes (a local instance: ["127.0.0.1"])."""
    import ray  # deferred: see connect

    return sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})


def disconnect() -> None:
    """Leave the cluster (a local instance ends, Serve with it). Serve itself is left running on a joined
    cluster: other applications may use it; this run's apps were deleted before."""
    import ray  # deferred: see connect

    if ray.is_initialized():
        ray.shutdown()


__all__ = ["connect", "disconnect", "loopback_environment", "node_addresses", "probe", "LOOPBACK", "NAMESPACE",
           "LOOPBACK_ENV"]
