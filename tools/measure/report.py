"""How the measure_* tools hand back their report: `--json FILE` writes it, `--json -` prints the JSON
(for piping), otherwise one `key: value` line each for a person to read."""

from __future__ import annotations

import json
from pathlib import Path


def emit_report(report: dict, json_arg: str | None, key_width: int = 20) -> None:
    text = json.dumps(report, indent=2)
    if json_arg and json_arg != "-":
        Path(json_arg).write_text(text + "\n")
    if json_arg == "-":
        print(text)
    else:
        for key, value in report.items():
            print(f"{key:>{key_width}}: {value}")
