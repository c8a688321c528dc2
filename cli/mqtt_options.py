"""The MQTT options beside --mqtt, shared by `rtsp` and `monitor`: `@with_mqtt_options` adds --mqtt-user,
--mqtt-password (or the environment variable TRANSPOSE_LIVE_MQTT_PASSWORD; never printed), --mqtt-tls,
--mqtt-ca, --ha-discovery / --no-ha-discovery and --ha-prefix; the command gets one `mqtt_options: MqttOptions`, and
`mqtt_options.plan(host, file)` merges them over cameras.yaml's mqtt: keys (None: no broker named anywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from transpose_live.cli.options import option_group
from transpose_live.monitor.broker import PASSWORD_ENV


@dataclass(frozen=True)
class MqttOptions:
    """None: not given (cameras.yaml or the default decides)."""

    mqtt_user: Optional[str] = None
    mqtt_password: Optional[str] = None
    mqtt_tls: Optional[bool] = None
    mqtt_ca: Optional[str] = None
    ha_discovery: Optional[bool] = None
    ha_prefix: Optional[str] = None

    def plan(self, host: str | None, file=None):
        """The validated monitor.publishing.MqttPlan, or None without a broker."""
        from transpose_live.monitor.publishing import plan_mqtt  # deferred: paho, only for MQTT runs

        return plan_mqtt(host, user=self.mqtt_user, password=self.mqtt_password, tls=self.mqtt_tls,
                         ca_file=self.mqtt_ca, discovery=self.ha_discovery, prefix=self.ha_prefix, file=file)


_FLAGS = {
    "mqtt_user": ("--mqtt-user", dict(help="User name at the MQTT broker.")),
    "mqtt_password": ("--mqtt-password", dict(envvar=PASSWORD_ENV, show_envvar=True, show_default=False,
                                              help="Password at the MQTT broker (better: the environment "
                                                   "variable, so it stays out of the process list).")),
    "mqtt_tls": ("--mqtt-tls/--no-mqtt-tls", dict(show_default=False, help="MQTT over TLS (port 8883 unless "
                                                   "given), the broker's certificate checked against the "
                                                   "system's CAs, or --mqtt-ca's.")),
    "mqtt_ca": ("--mqtt-ca", dict(metavar="CA_FILE", help="The CA that signed the broker's certificate (implies "
                                  "--mqtt-tls).")),
    "ha_discovery": ("--ha-discovery/--no-ha-discovery", dict(show_default=False, help="Announce each camera "
                     "to Home Assistant (MQTT discovery: person, fall, persons, fps and stream entities); on "
                     "by default with --mqtt.")),
    "ha_prefix": ("--ha-prefix", dict(help="Home Assistant's discovery prefix (default homeassistant).")),
}


def with_mqtt_options(fn: Callable) -> Callable:
    """Add the MQTT options to a command; it gets `mqtt_options: MqttOptions` (its other parameters unchanged)."""
    return option_group(MqttOptions, _FLAGS, "mqtt_options")(fn)


__all__ = ["MqttOptions", "with_mqtt_options"]
