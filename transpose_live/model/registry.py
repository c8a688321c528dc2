"""The table of released TransPose checkpoints: name, preset, file, URL, what each is worth and weighs.

All five are the authors' GitHub release assets under the tag "Hub" (their README's model table). The
accuracy columns are what the authors report on COCO val2017 at 256x192 with flip test:

- ap_detector: person boxes from their detector (person AP 56.4), the paper's Table 2;
- ap_gt: ground-truth person boxes, the authors' README model table (the paper does not give these).

size_bytes is the tensor data of the preset's state dict (every parameter and buffer, as stored), which a
released file is a container of; the file itself is a little larger (its zip / pickle framing).
Finding, fetching and verifying the files is transpose_live.model.hub's job; this module only describes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transpose_live.errors import TransposeLiveError

HUB_URL_ENV = "TRANSPOSE_LIVE_HUB_URL"      # replaces the release URL's base: <base>/<filename>
RELEASES = "https://github.com/yangsenius/TransPose/releases/download/Hub"


@dataclass(frozen=True)
class PaperAP:
    """COCO val2017 keypoint AP (0..1) the authors report for a preset."""

    detector: float                 # with detected person boxes (paper Table 2)
    gt: float | None                # with ground-truth boxes (authors' README), None where not given


# Table 2 of the paper (detector boxes); the authors' README model table (GT boxes).
PAPER_AP: dict[str, PaperAP] = {
    "tp_r_a3s": PaperAP(0.715, None),
    "tp_r_a3": PaperAP(0.717, 0.738),
    "tp_r_a4": PaperAP(0.726, 0.751),
    "tp_h_s": PaperAP(0.742, 0.761),
    "tp_h_a4": PaperAP(0.753, 0.775),
    "tp_h_a6": PaperAP(0.758, 0.781),
}


@dataclass(frozen=True)
class HubEntry:
    name: str
    preset: str
    url: str | None                 # None: nothing to download (the shipped checkpoint)
    filename: str
    sha256: str | None              # pinned here when known; else recorded on first verified use
    description: str
    image_size: tuple[int, int] | None = None   # (h, w) the weights were trained at, when not the preset's
    local_path: Path | None = None               # shipped file (default entry only)
    size_bytes: int | None = None                # the state dict's tensor data (see the module docstring)

    @property
    def paper_ap(self) -> PaperAP | None:
        """The authors' numbers, for the released weights of a paper preset (not for other files)."""
        return PAPER_AP.get(self.preset) if self.url and self.url.startswith(RELEASES) else None


def _released(preset: str, filename: str, size_bytes: int, title: str) -> HubEntry:
    return HubEntry(preset, preset, f"{RELEASES}/{filename}", filename, None,
                    f"{title}, COCO train2017, 256x192 (authors' release)", size_bytes=size_bytes)


# Names are the presets' (model/config.py PRESETS); the sha256 of the released files is not published, so
# it is pinned on first verified download (see hub.py).
REGISTRY: dict[str, HubEntry] = {
    e.name: e
    for e in (
        _released("tp_r_a3", "tp_r_256x192_enc3_d256_h1024_mh8.pth", 20_824_076, "TransPose-R-A3"),
        _released("tp_r_a4", "tp_r_256x192_enc4_d256_h1024_mh8.pth", 23_983_116, "TransPose-R-A4"),
        _released("tp_h_s", "tp_h_32_256x192_enc4_d64_h128_mh1.pth", 32_171_804, "TransPose-H-S"),
        _released("tp_h_a4", "tp_h_48_256x192_enc4_d96_h192_mh1.pth", 69_358_236, "TransPose-H-A4"),
        _released("tp_h_a6", "tp_h_48_256x192_enc6_d96_h192_mh1.pth", 69_956_508, "TransPose-H-A6"),
    )
}


def entry_url(entry: HubEntry) -> str:
    """Where to fetch `entry`: its URL, or <$TRANSPOSE_LIVE_HUB_URL>/<filename> when that is set (a mirror)."""
    if not entry.url:
        raise TransposeLiveError(f"{entry.name!r} ships with the package; there is nothing to download")
    base = os.environ.get(HUB_URL_ENV)
    if base:
        return f"{base.rstrip('/')}/{entry.filename}"
    return entry.url


__all__ = ["HUB_URL_ENV", "RELEASES", "PAPER_AP", "PaperAP", "HubEntry", "REGISTRY", "entry_url"]
