"""The universal CNN detector: Wang et al., "CNN-generated images are surprisingly easy to spot...
for now" (CVPR 2020), on a MobileNetV2 backbone sized for CPUs.

An ImageNet-pretrained CNN whose 1000-class head is replaced by one logit of *fake*, fine-tuned
with blur + JPEG augmentation on crops taken at native resolution (no resizing: resampling would
erase the upsampling traces the network learns). Training, inference and persistence come from
:class:`~fakescope.detectors.torch_detector.TorchDetector`; this module only says what the
network is, how it is initialised and which of its blocks stay frozen.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Self

from fakescope.detectors.torch_detector import TorchDetector
from fakescope.errors import ModelError
from fakescope.nn import MAX_FILTER_SIZE, N_FEATURE_BLOCKS
from fakescope.nn.preprocess import IMAGENET, InputConfig

if TYPE_CHECKING:
    import torch

#: The registry entry of the ImageNet weights (see ``fakescope weights list``).
IMAGENET_WEIGHTS = "mobilenet-v2-imagenet"
#: Keys of the ImageNet 1000-class head, replaced by our 1-logit head.
HEAD_KEYS = frozenset({"classifier.1.weight", "classifier.1.bias"})


@cache
def _network_class() -> type:
    # Defined lazily so that importing the detector registry does not import torch.
    import torch

    from fakescope.nn.mobilenet_v2 import MobileNetV2

    class UniversalCNNNet(MobileNetV2):
        """MobileNetV2 with a 1-logit head; the first ``frozen_blocks`` feature blocks frozen.

        A subclass rather than a wrapper so the state-dict keys stay torchvision's.
        """

        def __init__(self, frozen_blocks: int, blurpool: bool, blur_filter: int) -> None:
            super().__init__(num_classes=1, blurpool=blurpool, blur_filter=blur_filter)
            self.frozen_blocks = frozen_blocks
            for block in self.features[:frozen_blocks]:
                block.requires_grad_(False)
            # NHWC lets oneDNN skip layout conversions around the depthwise convolutions:
            # measured 20-35 % faster CPU training than NCHW. The state dict is unaffected
            # (saving copies to contiguous arrays, loading copies into these tensors).
            self.to(memory_format=torch.channels_last)

        def train(self, mode: bool = True) -> Self:
            super().train(mode)
            # Frozen blocks also keep their BatchNorm statistics: updating running means on a
            # few thousand tiles would shift the pretrained features the later blocks rely on.
            for block in self.features[: self.frozen_blocks]:
                block.train(False)
            return self

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.contiguous(memory_format=torch.channels_last)
            return super().forward(x).reshape(-1)

    return UniversalCNNNet


class UniversalCNNDetector(TorchDetector):
    """ImageNet MobileNetV2 fine-tuned to spot generated images (Wang et al. 2020 recipe).

    The defaults are sized for CPUs and were measured (see README.md): 160 px crops, the first 7
    feature blocks frozen and 3 epochs fine-tune 4,000 tiles in about 10 CPU-minutes, well
    inside half an hour on two cores. Blur/JPEG probability 0.1 is the paper's "Blur+JPEG (0.1)"
    variant; 0.5 lost ~0.05 AP on our data in this short schedule.
    """

    name = "universal-cnn"

    def __init__(
        self,
        pretrained: bool = True,
        blurpool: bool = False,
        blur_filter: int = 3,
        crop_size: int = 160,
        freeze_blocks: int = 7,
        epochs: int = 3,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        blur_prob: float = 0.1,
        jpeg_prob: float = 0.1,
        random_state: int = 0,
        threads: int = 0,
        crop_grid: int = 1,
    ) -> None:
        self.pretrained = pretrained
        self.blurpool = blurpool
        self.blur_filter = blur_filter
        self.crop_size = crop_size
        self.freeze_blocks = freeze_blocks
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.blur_prob = blur_prob
        self.jpeg_prob = jpeg_prob
        self.random_state = random_state
        self.threads = threads
        self.crop_grid = crop_grid

    def check_params(self) -> None:

        super().check_params()
        if not 0 <= int(self.freeze_blocks) <= N_FEATURE_BLOCKS:
            raise ValueError(
                f"freeze_blocks must be in 0..{N_FEATURE_BLOCKS}, got {self.freeze_blocks}"
            )
        if not 1 <= int(self.blur_filter) <= MAX_FILTER_SIZE:
            raise ValueError(f"blur_filter must be in 1..{MAX_FILTER_SIZE}, got {self.blur_filter}")
        # 32 px is the network's total stride: a smaller crop is down to one pixel before the
        # last stages, which then see no spatial structure at all.
        if int(self.crop_size) < 32:
            raise ValueError(f"crop_size must be at least 32, got {self.crop_size}")
        self.input_config()

    def input_config(self) -> InputConfig:
        # ImageNet normalisation (what the backbone was trained with), native-resolution crops.
        return InputConfig(int(self.crop_size), IMAGENET.mean, IMAGENET.std)

    def build_network(self) -> torch.nn.Module:
        return _network_class()(
            frozen_blocks=int(self.freeze_blocks),
            blurpool=bool(self.blurpool),
            blur_filter=int(self.blur_filter),
        )

    def initialise_network(self, network: torch.nn.Module) -> None:
        if not self.pretrained:
            return
        from fakescope.nn.mobilenet_v2 import load_torchvision_state_dict
        from fakescope.weights import resolve_weights

        # Raises WeightsMissingError naming `fakescope weights fetch mobilenet-v2-imagenet`.
        path = resolve_weights(IMAGENET_WEIGHTS)
        state = load_torchvision_state_dict(path)
        backbone = {key: value for key, value in state.items() if key not in HEAD_KEYS}
        result = network.load_state_dict(backbone, strict=False)
        # Everything but the new head must come from the checkpoint: a silent partial load
        # would train from a half-random network.
        if set(result.missing_keys) != HEAD_KEYS or result.unexpected_keys:
            raise ModelError(
                f"{path} does not fit MobileNetV2: missing {result.missing_keys}, "
                f"unexpected {result.unexpected_keys}"
            )

    def trainable_parameters(self, network: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
        return (p for p in network.parameters() if p.requires_grad)
