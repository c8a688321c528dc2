"""Watching many IP cameras: the camera file (cameras.yaml), events (person appeared / left / down / up, stream
lost / back), MQTT, and the engine of `transpose-live monitor` (runner: one pipeline per camera, one shared model).
The web view and the cluster mode join here.

May use: live and everything below it. Never: train, bench, cli, ui.
"""
