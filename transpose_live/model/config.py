"""Model presets: one frozen dataclass per TransPose variant (the paper's Table 1, plus our MobileNet one)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from transpose_live.errors import TransposeLiveError


@dataclass(frozen=True)
class ModelConfig:
    name: str
    backbone: str                  # "resnet_s" | "hrnet_s" | "mobilenet_s"
    d_model: int
    dim_feedforward: int
    n_layers: int
    n_heads: int
    head: str                      # "deconv" (R), "bilinear" (R-A3*), "conv1x1" (H)
    image_size: tuple[int, int] = (256, 192)   # (height, width) of the input crop
    num_joints: int = 17
    dropout: float = 0.1
    hrnet_width: int = 32          # HRNet-S only: W32 or W48
    deconv_channels: int = 256     # deconv head only
    description: str = ""

    @property
    def stride(self) -> int:
        """Feature stride of the stem: the token grid is image_size / stride."""
        return 4 if self.backbone == "hrnet_s" else 8

    @property
    def token_grid(self) -> tuple[int, int]:
        return self.image_size[0] // self.stride, self.image_size[1] // self.stride

    @property
    def heatmap_size(self) -> tuple[int, int]:
        return self.image_size[0] // 4, self.image_size[1] // 4

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this: the token grid and the x4 heatmaps then line up exactly
        (HRNet-S also fuses a stride-16 branch)."""
        return 16 if self.backbone == "hrnet_s" else 8

    def with_image_size(self, height: int, width: int) -> "ModelConfig":
        h, w, m = int(height), int(width), self.size_multiple
        if h < m or w < m or h % m or w % m:
            raise TransposeLiveError(f"input size {h}x{w} does not suit {self.name}: height and width must be "
                                     f"positive multiples of {m}")
        return replace(self, image_size=(h, w))


PRESETS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        ModelConfig("tp_r_a3s", "resnet_s", 256, 512, 3, 8, "bilinear",
                    description="TransPose-R-A3* (bilinear head, h=512; paper only, no released weights)"),
        ModelConfig("tp_r_a3", "resnet_s", 256, 1024, 3, 8, "deconv", description="TransPose-R-A3"),
        ModelConfig("tp_r_a4", "resnet_s", 256, 1024, 4, 8, "deconv", description="TransPose-R-A4"),
        ModelConfig("tp_h_s", "hrnet_s", 64, 128, 4, 1, "conv1x1", hrnet_width=32,
                    description="TransPose-H-S (HRNet-S-W32)"),
        ModelConfig("tp_h_a4", "hrnet_s", 96, 192, 4, 1, "conv1x1", hrnet_width=48,
                    description="TransPose-H-A4 (HRNet-S-W48)"),
        ModelConfig("tp_h_a6", "hrnet_s", 96, 192, 6, 1, "conv1x1", hrnet_width=48,
                    description="TransPose-H-A6 (HRNet-S-W48)"),
        ModelConfig("tp_m_a4", "mobilenet_s", 192, 384, 4, 8, "deconv", deconv_channels=128,
                    description="TransPose-M-A4: MobileNetV2 stem (ImageNet start, stride 8 by dilation); "
                                "this project's own variant for CPU real-time"),
    )
}


def get_config(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise TransposeLiveError(
            f"unknown model {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None


def parse_image_size(value) -> tuple[int, int]:
    """'256x192' or (256, 192) -> (height, width); both positive (the model checks its own multiple)."""
    if isinstance(value, str):
        try:
            h, w = (int(v) for v in value.lower().split("x"))
        except ValueError:
            raise TransposeLiveError(f"bad size {value!r}: use HEIGHTxWIDTH, e.g. 256x192") from None
    else:
        try:
            h, w = (int(v) for v in value)
        except (TypeError, ValueError):
            raise TransposeLiveError(f"bad size {value!r}: use (height, width)") from None
    if h < 16 or w < 16:
        raise TransposeLiveError(f"bad size {h}x{w}: height and width must be at least 16 pixels")
    return h, w
