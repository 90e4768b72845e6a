"""MobileNetV2 (Sandler et al., CVPR 2018) in plain torch, state-dict compatible with torchvision.

Module names, parameter shapes and buffers match ``torchvision.models.mobilenet_v2`` exactly
(``features.0.0.weight`` ... ``classifier.1.bias``), so torchvision's ImageNet checkpoint loads
with ``strict=True`` without depending on torchvision. MobileNetV2 is used instead of Wang et al.'s
ResNet-50 because it is ~7x cheaper (0.3 vs 4.1 GFLOPs at 224 px), which is what makes fine-tuning
on a laptop CPU practical.

``blurpool=True`` makes the stride-2 depthwise convolutions of the four downsampling blocks
dense and appends a :class:`~fakescope.nn.blurpool.BlurPool2d` after their BatchNorm + ReLU6,
as in Zhang 2019 (blur after the nonlinearity). The stem convolution stays strided, as in
Zhang's anti-aliased MobileNetV2: blurring nearly raw pixels removes exactly the traces an
artefact detector needs (measured: fine-tuning then barely learns). BlurPool is placed at the
end of the existing ``Sequential`` and has no persistent state, so the state dict and the output
shapes are unchanged and the same checkpoints load. (Zhang's released network inserts the blur
as a separate entry of the block, which renumbers the keys.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fakescope.nn.blurpool import BlurPool2d

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FEATURE_DIM = 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding (to a multiple of 8, never more than 10 % below)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU6; indices 0, 1, 2 as torchvision's Conv2dNormActivation.

    With ``blurpool`` and ``stride > 1`` the convolution runs at stride 1 and a BlurPool (index 3,
    no state) subsamples after the activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        blurpool: bool = False,
        blur_filter: int = 3,
    ) -> None:
        antialias = blurpool and stride > 1
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=1 if antialias else stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        ]
        if antialias:
            layers.append(BlurPool2d(out_channels, blur_filter, stride))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear projection (1x1), residual when shapes allow."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: int,
        blurpool: bool = False,
        blur_filter: int = 3,
    ) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(
                hidden,
                hidden,
                stride=stride,
                groups=hidden,
                blurpool=blurpool,
                blur_filter=blur_filter,
            ),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2 ``(N, 3, H, W) -> (N, num_classes)``; any input size (global average pool)."""

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        blurpool: bool = False,
        blur_filter: int = 3,
    ) -> None:
        super().__init__()
        input_channel = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(FEATURE_DIM * max(1.0, width_mult))
        # The stem stays strided even with blurpool, as in Zhang's own anti-aliased MobileNetV2:
        # a low-pass on (almost) raw pixels would erase the high-frequency generator traces a
        # forensic network must see; its learned 3x3 filters can pick them up before subsampling.
        features: list[nn.Module] = [ConvBNReLU(3, input_channel, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            output_channel = make_divisible(c * width_mult)
            for i in range(n):
                features.append(
                    InvertedResidual(
                        input_channel,
                        output_channel,
                        stride=s if i == 0 else 1,
                        expand_ratio=t,
                        blurpool=blurpool,
                        blur_filter=blur_filter,
                    )
                )
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes)
        )
        self._initialise()

    def _initialise(self) -> None:
        # torchvision's initialisation, so random-init training behaves like theirs.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The globally pooled features, ``(N, last_channel)``, before the classifier."""
        x = self.features(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def load_torchvision_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision ``.pth`` checkpoint as tensors only (``weights_only``: no code runs)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state
