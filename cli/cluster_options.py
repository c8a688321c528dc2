"""`monitor --cluster local|auto|ray://HOST:PORT --replicas N`: the options checked, and the monitor the
command runs in cluster mode (transpose_live.monitor.cluster.ClusterMonitor, the in-process Monitor's face).

    transpose-live monitor --config cameras.yaml --cluster local            # Ray on this machine
    transpose-live monitor --config cameras.yaml --cluster auto             # the cluster `ray start` joined
    transpose-live monitor --config cameras.yaml --cluster ray://head:10001 --replicas 2

cameras.yaml may say the same in a `cluster:` section, `cluster: local` or `cluster: {address: auto,
replicas: 2}`; the command line wins.
Ray is imported only here, in cluster mode (`pip install 'transpose-live[cluster]'`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from transpose_live.errors import TransposeLiveError

CLUSTER_HELP = ("Run the cameras on Ray: local (a Ray instance on this machine, on 127.0.0.1), auto (the "
                "cluster `ray start` set up) or ray://HOST:PORT (a remote cluster). Needs "
                "pip install 'transpose-live\\[cluster]'.")
REPLICAS_HELP = "With --cluster: replicas of the pose model (and detector) service; default: autoscaling."


def cluster_option() -> Any:
    return typer.Option(None, "--cluster", help=CLUSTER_HELP)


def replicas_option() -> Any:
    return typer.Option(None, "--replicas", help=REPLICAS_HELP)


def cluster_settings(config: Path | None) -> dict:
    """cameras.yaml's `cluster:` section as {"cluster": address, "replicas": N} (the keys it has; empty
    without a file or section). A section of another shape is an error naming it."""
    if config is None:
        return {}
    import yaml  # deferred: PyYAML loads on first use

    try:
        data = yaml.safe_load(Path(config).read_text())
    except (OSError, yaml.YAMLError):
        return {}                  # load_config reports the file's own problems
    section = data.get("cluster") if isinstance(data, dict) else None
    if section is None:
        return {}
    if isinstance(section, str):
        return {"cluster": section}
    if not isinstance(section, dict) or set(section) - {"address", "replicas"} or "address" not in section:
        raise TransposeLiveError(f"{Path(config).name}: cluster must be an address (local, auto, ray://HOST:PORT) "
                                 "or {address: ..., replicas: N}")
    return {"cluster": section["address"], **({"replicas": section["replicas"]} if "replicas" in section else {})}


def check_cluster_options(cluster: str | None, replicas: str | int | None, config: Path | None = None):
    """(ClusterAddress or None, replicas or None) from the options, else from cameras.yaml; checked."""
    from transpose_live.monitor.cluster.address import check_replicas, parse_cluster

    settings = cluster_settings(config)
    cluster = cluster if cluster is not None else settings.get("cluster")
    replicas = replicas if replicas is not None else settings.get("replicas")
    if cluster is None:
        if replicas is not None:
            raise TransposeLiveError("--replicas needs --cluster (local, auto or ray://HOST:PORT)")
        return None, None
    return parse_cluster(str(cluster)), check_replicas(replicas)


def cluster_monitor(cameras, spec, outputs, source_options: dict, address, replicas: int | None):
    """The ClusterMonitor for `address` (Ray joined or started, services deployed); call start() next."""
    import importlib.util

    from transpose_live.monitor.cluster.address import LOCAL
    from transpose_live.monitor.cluster.connect import loopback_environment

    # found before it is imported: a local Ray must see the loopback settings first (finding ray.serve imports ray)
    if importlib.util.find_spec("ray") is None:
        raise TransposeLiveError("--cluster needs Ray: pip install 'transpose-live[cluster]'")
    if address.kind == LOCAL:
        loopback_environment()
    if importlib.util.find_spec("ray.serve") is None:
        raise TransposeLiveError("--cluster needs Ray Serve: pip install 'transpose-live[cluster]'")
    from transpose_live.monitor.cluster.driver import ClusterMonitor

    return ClusterMonitor(cameras, spec, outputs, source_options, address=address, replicas=replicas)


__all__ = ["cluster_option", "replicas_option", "check_cluster_options", "cluster_settings", "cluster_monitor"]
