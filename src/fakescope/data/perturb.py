"""Seeded, composable, replayable image perturbations (in the spirit of ForgeryNet's suite).

Why this module exists: a detector that only ever saw pristine PNGs learns "uncompressed and
full-size" instead of "generated". Perturbing both classes alike (JPEG, WebP, blur, noise,
resizing, crops, rotations, colour changes, social-network pipelines) tests and trains for
robustness without changing any label.

Contract of every perturbation
------------------------------
- Input and output are RGB ``uint8`` arrays of shape (H, W, 3); H and W may change
  (resize, crop, rotation with ``expand``), the channel count and dtype never do.
- Calling ``perturbation(pixels, rng)`` first **samples** its random parameters from a numpy
  :class:`~numpy.random.Generator` (ranges like ``60-95`` become one value per image, random
  crops become offsets, noise becomes a noise seed), then **applies** them. The result carries a
  JSON-ready ``record`` (``{"name": ..., "params": {...}}``) that says exactly what was applied.
- ``perturbation.replay(pixels, params)`` (or :func:`replay` with a record) applies recorded
  parameters again and gives the identical output: applying never draws random numbers, it only
  reads the params. Same seed + same image -> identical output, bytes included.
- A final JPEG or WebP step also returns the exact file bytes it produced
  (:attr:`Perturbed.encoded`), so that saving them does not undo the compression.
- Ground truth follows the pixels: :meth:`Perturbation.replay_mask` / :func:`replay_mask` apply
  a record's params to a binary mask (nearest neighbour, so 0/255 stays 0/255) and
  :meth:`Perturbation.replay_flow` / :func:`replay_flow` to a float32 (H, W, 2) backward flow
  ``(dy, dx)``. Geometric steps (resize, longside, crop, rotate, social) move and rescale them
  like the image; photometric steps (codecs, blur, noise, colour) leave them unchanged.

Spec syntax (``fakescope data perturb SPEC``)
---------------------------------------------
Steps are separated by ``,`` and applied left to right; a step is ``name[:arg[:arg...]]``.
An argument is a number, a range ``low-high`` sampled uniformly per image (integers for integer
parameters; negative bounds work: ``rotate:-10-10``), a word naming a choice, or ``key=value``.
Numbers fill the numeric parameters in order, words the choice they belong to::

    jpeg:75,blur:1.0,resize:0.5     jpeg:60-95     noise:2     resize:0.5:noaa
    crop:0.8:center     rotate:-10-10:expand     jitter:0.2:0.2:0.2:0.05     social:facebook

See :data:`PERTURBATIONS` for every name, and each class's docstring for its arguments.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import scipy.ndimage
from PIL import Image, ImageEnhance

Params = dict[str, Any]

_STEP_SEPARATOR = ","
_ARG_SEPARATOR = ":"
# "low-high" with optional signs on both bounds; a lone "-10" does not match (no second bound).
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*-\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*$")
_SEED_BITS = 63  # noise seeds and derived file seeds stay inside a signed 64-bit JSON integer


# --- values, ranges and argument declarations ---------------------------------------------------


@dataclass(frozen=True)
class Range:
    """A closed interval sampled uniformly once per image (integers when ``integer``)."""

    low: float
    high: float
    integer: bool = False

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"range {self.low}-{self.high} has low > high")

    def sample(self, rng: np.random.Generator) -> float | int:
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high), endpoint=True))
        if self.low == self.high:
            return float(self.low)
        return float(rng.uniform(self.low, self.high))

    def __str__(self) -> str:
        if self.integer:
            return f"{int(self.low)}-{int(self.high)}"
        return f"{self.low!r}-{self.high!r}"  # repr: the shortest text that reads back exactly


def sample_value(value: Any, rng: np.random.Generator) -> Any:
    """A fixed value as is, a :class:`Range` sampled from ``rng``."""
    return value.sample(rng) if isinstance(value, Range) else value


@dataclass(frozen=True)
class Arg:
    """How one constructor argument is written in a spec and which values it accepts."""

    kind: type  # int, float, or str for a choice among words (stored as any value)
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    low_exclusive: bool = False
    choices: Mapping[str, Any] | None = None  # spec word -> stored value, for kind str
    rangeable: bool = True  # whether "low-high" is accepted
    optional: bool = False  # whether None is a valid value (the default of optional numbers)

    def check(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, Range):
            if not self.rangeable:
                raise ValueError(f"{name} does not accept a range")
            if self.kind is int and not (
                float(value.low).is_integer() and float(value.high).is_integer()
            ):
                raise ValueError(f"{name} range must have integer bounds, got {value}")
            self._check_number(name, value.low)
            self._check_number(name, value.high)
            return
        if self.kind is str:
            allowed = tuple((self.choices or {}).values())
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}")
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if self.kind is int and not float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
        self._check_number(name, value)

    def _check_number(self, name: str, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if self.low is not None and (
            value < self.low or (self.low_exclusive and value == self.low)
        ):
            relation = ">" if self.low_exclusive else ">="
            raise ValueError(f"{name} must be {relation} {self.low:g}, got {value:g}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{name} must be <= {self.high:g}, got {value:g}")

    def parse(self, name: str, token: str) -> Any:
        """A spec token as a value of this argument (a number, a :class:`Range` or a choice)."""
        if self.kind is str:
            token = token.lower()
            if self.choices is None or token not in self.choices:
                words = ", ".join(self.choices or {})
                raise ValueError(f"{name} must be one of {words}, got {token!r}")
            return self.choices[token]
        match = _RANGE.match(token)
        if match is not None:
            if not self.rangeable:
                raise ValueError(f"{name} does not accept a range, got {token!r}")
            low, high = (self._number(name, part) for part in match.groups())
            if low > high:
                raise ValueError(f"{name}: range {token!r} has low > high")
            return Range(low, high, integer=self.kind is int)
        return self._number(name, token)

    def _number(self, name: str, token: str) -> float | int:
        try:
            number = float(token)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {token!r}") from None
        if self.kind is int:
            if not number.is_integer():
                raise ValueError(f"{name} must be an integer, got {token!r}")
            return int(number)
        return number


def arg(kind: type, **options: Any) -> dict[str, Arg]:
    """Field metadata that makes a dataclass field a spec argument."""
    return {"arg": Arg(kind, **options)}


def _args(cls: type) -> list[tuple[str, Arg]]:
    return [(f.name, f.metadata["arg"]) for f in fields(cls) if "arg" in f.metadata]


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """The exact bytes of a compressed file and how to name it."""

    data: bytes
    format: str  # Pillow's format name: "JPEG" or "WEBP"
    extension: str  # ".jpg" or ".webp"


@dataclass(frozen=True)
class Perturbed:
    """A perturbation's output: pixels, what was applied, and the file bytes of a final codec."""

    pixels: np.ndarray  # (H, W, 3) uint8
    record: Params  # {"name": ..., "params": {...}}; JSON-ready, replayable with replay()
    encoded: Encoded | None = None

    def jpeg_tables(self) -> dict[int, list[int]] | None:
        """The quantization tables of a final JPEG step (what a reader of the file would see)."""
        if self.encoded is None or self.encoded.format != "JPEG":
            return None
        with Image.open(io.BytesIO(self.encoded.data)) as image:
            tables = getattr(image, "quantization", None)
            return {int(k): list(map(int, v)) for k, v in tables.items()} if tables else None


# --- the base class -----------------------------------------------------------------------------


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy array, got {getattr(pixels, 'dtype', pixels)}")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ValueError(f"expected RGB pixels of shape (H, W, 3), got {pixels.shape}")
    return pixels


def _check_mask(mask: np.ndarray) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype not in (np.uint8, np.bool_):
        raise ValueError(f"expected a uint8 or bool mask, got {getattr(mask, 'dtype', mask)}")
    if mask.ndim != 2 or mask.shape[0] < 1 or mask.shape[1] < 1:
        raise ValueError(f"expected a mask of shape (H, W), got {mask.shape}")
    return mask


def _check_flow(flow: np.ndarray) -> np.ndarray:
    if not isinstance(flow, np.ndarray) or not np.issubdtype(flow.dtype, np.floating):
        raise ValueError(f"expected a float flow field, got {getattr(flow, 'dtype', flow)}")
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] < 1 or flow.shape[1] < 1:
        raise ValueError(f"expected a flow of shape (H, W, 2), got {flow.shape}")
    return flow.astype(np.float32, copy=False)


def as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def derive_seed(seed: int, key: str) -> int:
    """A 63-bit seed from ``(seed, key)``: stable per key whatever else is processed."""
    digest = hashlib.sha256(f"{seed}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - _SEED_BITS)


class Perturbation(ABC):
    """Base class: subclasses are frozen dataclasses whose fields are declared with :func:`arg`.

    Leaf perturbations implement :meth:`sample` (random parameters, from the generator and the
    current image size) and :meth:`apply` (deterministic, from the params alone, so that a record
    can be replayed without the configuration that produced it).
    """

    name: ClassVar[str]
    geometric: ClassVar[bool] = False  # moves pixels: apply_mask/apply_flow must move them too

    def __post_init__(self) -> None:
        for name, spec in _args(type(self)):
            spec.check(f"{self.name}.{name}", getattr(self, name))
        self.validate()

    def validate(self) -> None:
        """Checks across arguments; raise ValueError. Most perturbations need none."""
        return None

    @abstractmethod
    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        """The parameters for one image of ``height`` x ``width`` (JSON-ready values)."""

    @abstractmethod
    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        """Apply recorded parameters; never random."""

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        """Recorded ``params`` applied to a 2-D mask of the input image's size; never random.

        Geometric perturbations override this with nearest-neighbour resampling, so that a mask
        keeps exactly the values it had (0/255). Photometric ones leave the mask as it is.
        """
        if self.geometric:  # a geometric step without its own rule would misalign silently
            raise NotImplementedError(f"{self.name} moves pixels but defines no mask transform")
        return mask.copy()

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        """Recorded ``params`` applied to a float32 (H, W, 2) backward flow ``(dy, dx)``.

        A flow ``f`` says ``forged(p) = original(p + f(p))``. The result is the flow between
        the perturbed forged image and the original perturbed with the same params, so
        geometric steps resample the field *and* transform its vectors (scale them with a
        resize, rotate them with a rotation). Photometric ones leave the flow as it is.
        """
        if self.geometric:
            raise NotImplementedError(f"{self.name} moves pixels but defines no flow transform")
        return flow.copy()

    def run(self, pixels: np.ndarray, params: Params) -> tuple[np.ndarray, Encoded | None]:
        """Like :meth:`apply`, also returning file bytes when the step is a codec."""
        return self.apply(pixels, params), None

    def forward(
        self, pixels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, Params, Encoded | None]:
        params = self.sample(rng, pixels.shape[0], pixels.shape[1])
        out, encoded = self.run(pixels, params)
        return out, params, encoded

    def __call__(self, pixels: np.ndarray, rng: np.random.Generator | int) -> Perturbed:
        """Sample parameters from ``rng`` (a Generator or a seed) and apply them."""
        out, params, encoded = self.forward(_check_pixels(pixels), as_rng(rng))
        return Perturbed(_check_pixels(out), {"name": self.name, "params": params}, encoded)

    def replay(self, pixels: np.ndarray, params: Params) -> Perturbed:
        """Apply recorded ``params`` again: the same output as the call that recorded them."""
        out, encoded = self.run(_check_pixels(pixels), params)
        return Perturbed(_check_pixels(out), {"name": self.name, "params": params}, encoded)

    def replay_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        """Recorded ``params`` applied to a binary mask (uint8 or bool, (H, W), the size of the
        image they were recorded on): aligned with :meth:`replay`'s pixels, same dtype."""
        return self.apply_mask(_check_mask(mask), params)

    def replay_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        """Recorded ``params`` applied to a backward flow (H, W, 2) ``(dy, dx)``; float32."""
        return self.apply_flow(_check_flow(flow), params).astype(np.float32, copy=False)

    def config(self) -> Params:
        """The configuration (ranges unsampled), JSON-ready, for a dataset's description."""
        values: Params = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Range):
                value = {"range": [value.low, value.high]}
            elif isinstance(value, Perturbation):
                value = value.config()
            elif isinstance(value, tuple):
                value = [v.config() if isinstance(v, Perturbation) else v for v in value]
            values[f.name] = value
        return {"name": self.name, **values}

    @classmethod
    def from_args(cls, tokens: Sequence[str]) -> Perturbation:
        """Build from spec tokens (see the module docstring for how tokens are matched)."""
        declared = _args(cls)
        by_name = dict(declared)
        values: dict[str, Any] = {}
        numeric = [name for name, spec in declared if spec.kind is not str]
        for token in tokens:
            token = token.strip()
            key, sep, raw = token.partition("=")
            if sep:
                key = key.strip()
                if key not in by_name:
                    known = ", ".join(by_name) or "none"
                    raise ValueError(f"{cls.name}: unknown argument {key!r} (arguments: {known})")
                name, raw = key, raw.strip()
            else:
                name = _positional_slot(cls, declared, numeric, values, token)
            if name in values:
                raise ValueError(f"{cls.name}: {name} given twice; usage {cls.usage()}")
            try:
                values[name] = by_name[name].parse(f"{cls.name}.{name}", raw if sep else token)
            except ValueError as exc:
                raise ValueError(f"{exc}; usage {cls.usage()}") from None
        return cls(**values)

    @classmethod
    def usage(cls) -> str:
        """``name:arg:arg`` with defaults, for help texts and error messages."""
        parts = [cls.name]
        for f in fields(cls):  # type: ignore[arg-type]
            if "arg" not in f.metadata:
                continue
            spec: Arg = f.metadata["arg"]
            default = f.default if f.default is not MISSING else None
            if spec.kind is str and spec.choices:
                shown = "|".join(spec.choices)
                word = next((w for w, v in spec.choices.items() if v == default), default)
                parts.append(f"{{{shown}}}={word}")
            else:
                parts.append(f"{f.name.upper()}={default}")
        return _ARG_SEPARATOR.join(parts)


def _positional_slot(
    cls: type[Perturbation],
    declared: list[tuple[str, Arg]],
    numeric: list[str],
    values: dict[str, Any],
    token: str,
) -> str:
    """Which argument a positional token fills: a matching choice first, else the next number."""
    for name, spec in declared:
        if spec.kind is str and spec.choices and token.lower() in spec.choices:
            return name  # even when already set, so that the caller reports "given twice"
    for name in numeric:
        if name not in values:
            return name
    words = [w for _, spec in declared if spec.kind is str for w in (spec.choices or {})]
    hint = f" (words: {', '.join(words)})" if words else ""
    raise ValueError(f"{cls.name}: unexpected argument {token!r}; usage {cls.usage()}{hint}")


# --- helpers ------------------------------------------------------------------------------------


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels))  # (H, W, 3) uint8 is read as RGB


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return _rgb(image)


_FILTERS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
# Pillow's affine transform samples with a fixed-size kernel, i.e. without antialiasing.
_TRANSFORM_FILTERS = frozenset({"nearest", "bilinear", "bicubic"})


def _resize(
    pixels: np.ndarray,
    height: int,
    width: int,
    resample: str,
    antialias: bool,
    reducing_gap: float | None = None,
) -> np.ndarray:
    """Resize to ``height`` x ``width``; with ``antialias`` off, sample the input at the output's
    pixel centres (like OpenCV's INTER_LINEAR or ``torch.nn.functional.interpolate`` without
    antialias), which keeps the aliasing a careless pipeline produces."""
    image = _pil(pixels)
    in_h, in_w = pixels.shape[:2]
    if (height, width) == (in_h, in_w):
        return pixels.copy()
    if antialias or resample == "nearest":
        return _rgb(image.resize((width, height), _FILTERS[resample], reducing_gap=reducing_gap))
    matrix = (in_w / width, 0.0, 0.0, 0.0, in_h / height, 0.0)
    return _rgb(
        image.transform((width, height), Image.Transform.AFFINE, matrix, _FILTERS[resample])
    )


def _mask_image(mask: np.ndarray) -> Image.Image:
    """A mask as a Pillow ``L`` image, so that it is resampled by the very code (and pixel
    geometry) that resamples the image; bool masks travel as 0/1."""
    return Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))


def _mask_array(image: Image.Image, dtype: np.dtype) -> np.ndarray:
    values = np.asarray(image, dtype=np.uint8)
    return values != 0 if dtype == np.bool_ else values.copy()


def _resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest neighbour (the input pixel under each output pixel's centre): no new values."""
    if mask.shape == (height, width):
        return mask.copy()
    resized = _mask_image(mask).resize((width, height), Image.Resampling.NEAREST)
    return _mask_array(resized, mask.dtype)


def _linear_weights(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours and weights of 1-D linear interpolation at ``coords`` (pixel indices);
    positions beyond the edge take the edge value."""
    coords = np.clip(coords, 0, size - 1)
    low = np.floor(coords).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    return low, high, (coords - low).astype(np.float32)


def _resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """A flow resampled like an image resized to ``height`` x ``width``.

    Output pixel ``u`` shows the input at ``T^-1(u) = (u + 0.5) / s - 0.5`` (pixel centres
    line up, as in Pillow's resize), and a displacement of ``d`` input pixels spans ``s * d``
    output pixels, so ``f'(u) = s * f(T^-1(u))`` per axis. The field is sampled bilinearly at
    those points (warp flows are smooth; linear fields come out exact away from the border).
    """
    in_h, in_w = flow.shape[:2]
    if (in_h, in_w) == (height, width):
        return flow.copy()
    scale_y, scale_x = height / in_h, width / in_w
    y0, y1, wy = _linear_weights((np.arange(height) + 0.5) / scale_y - 0.5, in_h)
    x0, x1, wx = _linear_weights((np.arange(width) + 0.5) / scale_x - 0.5, in_w)
    rows = flow[y0] * (1 - wy)[:, None, None] + flow[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    out *= np.array([scale_y, scale_x], dtype=np.float32)
    return out.astype(np.float32, copy=False)


_FILTER_ARG = {name: name for name in _FILTERS}
_AA_ARG = {"aa": True, "noaa": False}


# --- codecs -------------------------------------------------------------------------------------


class Compression(Perturbation):
    """A lossy codec: the pixels are encoded to bytes in memory and decoded again."""

    format: ClassVar[str]
    extension: ClassVar[str]

    @abstractmethod
    def encode(self, pixels: np.ndarray, params: Params) -> bytes:
        """The file bytes for ``pixels`` with recorded ``params``."""

    def run(self, pixels: np.ndarray, params: Params) -> tuple[np.ndarray, Encoded | None]:
        data = self.encode(pixels, params)
        return _decode(data), Encoded(data, self.format, self.extension)

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        return self.run(pixels, params)[0]


_SUBSAMPLING = {"444": "4:4:4", "422": "4:2:2", "420": "4:2:0"}


@dataclass(frozen=True)
class JPEG(Compression):
    """``jpeg:QUALITY[:444|422|420]``: baseline JPEG at quality 1-100 with Pillow's (IJG) tables.

    4:2:0 chroma subsampling by default, as most cameras and platforms use.
    """

    name: ClassVar[str] = "jpeg"
    format: ClassVar[str] = "JPEG"
    extension: ClassVar[str] = ".jpg"
    quality: int | Range = field(default=75, metadata=arg(int, low=1, high=100))
    subsampling: str = field(
        default="4:2:0", metadata=arg(str, choices=_SUBSAMPLING, rangeable=False)
    )

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"quality": sample_value(self.quality, rng), "subsampling": self.subsampling}

    def encode(self, pixels: np.ndarray, params: Params) -> bytes:
        buffer = io.BytesIO()
        _pil(pixels).save(
            buffer,
            format="JPEG",
            quality=int(params["quality"]),
            subsampling=params.get("subsampling", "4:2:0"),
        )
        return buffer.getvalue()


@dataclass(frozen=True)
class WebP(Compression):
    """``webp:QUALITY``: lossy WebP at quality 0-100 (libwebp through Pillow, method 4)."""

    name: ClassVar[str] = "webp"
    format: ClassVar[str] = "WEBP"
    extension: ClassVar[str] = ".webp"
    quality: int | Range = field(default=80, metadata=arg(int, low=0, high=100))
    # method 4 is Pillow's default speed/size trade-off; recorded because it changes the bytes.
    method: int = field(default=4, metadata=arg(int, low=0, high=6, rangeable=False))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"quality": sample_value(self.quality, rng), "method": self.method}

    def encode(self, pixels: np.ndarray, params: Params) -> bytes:
        buffer = io.BytesIO()
        _pil(pixels).save(
            buffer,
            format="WEBP",
            quality=int(params["quality"]),
            method=int(params.get("method", 4)),
            lossless=False,
            exact=False,
        )
        return buffer.getvalue()


# --- filters and noise --------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianBlur(Perturbation):
    """``blur:SIGMA``: Gaussian blur with standard deviation SIGMA pixels (0 = unchanged).

    scipy's exact Gaussian (mirrored borders, kernel cut at 4 sigma), not Pillow's box-blur
    approximation, so the recorded sigma is the sigma that was applied.
    """

    name: ClassVar[str] = "blur"
    sigma: float | Range = field(default=1.0, metadata=arg(float, low=0.0, high=50.0))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"sigma": sample_value(self.sigma, rng)}

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        sigma = float(params["sigma"])
        if sigma == 0:
            return pixels.copy()
        blurred = scipy.ndimage.gaussian_filter(
            pixels.astype(np.float32), sigma=(sigma, sigma, 0.0), mode="reflect"
        )
        return _to_uint8(blurred)


@dataclass(frozen=True)
class GaussianNoise(Perturbation):
    """``noise:SIGMA``: additive Gaussian noise, SIGMA in 0-255 units, independent per channel.

    The noise field comes from a seed drawn at sampling time and recorded, so a replay adds the
    very same noise.
    """

    name: ClassVar[str] = "noise"
    sigma: float | Range = field(default=2.0, metadata=arg(float, low=0.0, high=255.0))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        sigma = sample_value(self.sigma, rng)
        return {"sigma": sigma, "seed": int(rng.integers(0, 2**_SEED_BITS))}

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        noise_rng = np.random.default_rng(int(params["seed"]))
        # float32 halves the cost of drawing and adding; plenty for values rounded to uint8.
        noise = noise_rng.standard_normal(size=pixels.shape, dtype=np.float32)
        noise *= np.float32(params["sigma"])
        return _to_uint8(pixels.astype(np.float32) + noise)


# --- geometry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resize(Perturbation):
    """``resize:SCALE[:FILTER][:aa|noaa][:REDUCING_GAP]``: scale both sides by SCALE (0.05-8).

    FILTER is a Pillow resampling filter (bicubic by default, lanczos, bilinear, box, hamming,
    nearest). ``aa`` (default) is Pillow's antialiased resize, whose kernel widens when
    shrinking; ``noaa`` samples the input at the output pixel centres with a fixed kernel
    (nearest, bilinear or bicubic) and keeps the aliasing. REDUCING_GAP is Pillow's
    ``reducing_gap`` (a fast integer box reduction first, as ``Image.thumbnail`` does).
    """

    name: ClassVar[str] = "resize"
    geometric: ClassVar[bool] = True
    scale: float | Range = field(default=0.5, metadata=arg(float, low=0.05, high=8.0))
    filter: str = field(default="bicubic", metadata=arg(str, choices=_FILTER_ARG))
    antialias: bool = field(default=True, metadata=arg(str, choices=_AA_ARG))
    reducing_gap: float | None = field(
        default=None, metadata=arg(float, low=1.0, rangeable=False, optional=True)
    )

    def validate(self) -> None:
        if not self.antialias and self.filter not in _TRANSFORM_FILTERS:
            raise ValueError(
                f"resize: noaa works with {', '.join(sorted(_TRANSFORM_FILTERS))}, "
                f"not {self.filter}"
            )
        if not self.antialias and self.reducing_gap is not None:
            raise ValueError("resize: reducing_gap needs the antialiased resize (aa)")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        scale = sample_value(self.scale, rng)
        return {
            "scale": scale,
            "height": max(1, round(height * scale)),
            "width": max(1, round(width * scale)),
            "filter": self.filter,
            "antialias": self.antialias and self.filter != "nearest",
            "reducing_gap": self.reducing_gap,
        }

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        return _resize(
            pixels,
            int(params["height"]),
            int(params["width"]),
            params["filter"],
            bool(params["antialias"]),
            params.get("reducing_gap"),
        )

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        return _resize_mask(mask, int(params["height"]), int(params["width"]))

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        return _resize_flow(flow, int(params["height"]), int(params["width"]))


@dataclass(frozen=True)
class LongSide(Perturbation):
    """``longside:SIZE[:FILTER]``: shrink so the long side is at most SIZE pixels (antialiased).

    Never enlarges, as upload pipelines do not; the aspect ratio is kept.
    """

    name: ClassVar[str] = "longside"
    geometric: ClassVar[bool] = True
    size: int | Range = field(default=2048, metadata=arg(int, low=1, high=65535))
    filter: str = field(default="lanczos", metadata=arg(str, choices=_FILTER_ARG))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        size = sample_value(self.size, rng)
        ratio = min(1.0, size / max(height, width))
        return {
            "size": size,
            "height": max(1, round(height * ratio)),
            "width": max(1, round(width * ratio)),
            "filter": self.filter,
        }

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        return _resize(pixels, int(params["height"]), int(params["width"]), params["filter"], True)

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        return _resize_mask(mask, int(params["height"]), int(params["width"]))

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        return _resize_flow(flow, int(params["height"]), int(params["width"]))


@dataclass(frozen=True)
class Crop(Perturbation):
    """``crop:SIZE[:random|center]``: a crop of SIZE (a fraction of each side when <= 1, else
    pixels per side, square), at a random position (default) or centred. A pixel size larger
    than the image is an error for that image."""

    name: ClassVar[str] = "crop"
    geometric: ClassVar[bool] = True
    size: float | Range = field(
        default=0.8, metadata=arg(float, low=0.0, low_exclusive=True, high=65535.0)
    )
    position: str = field(
        default="random", metadata=arg(str, choices={"random": "random", "center": "center"})
    )

    def validate(self) -> None:
        if isinstance(self.size, Range) and (self.size.low <= 1) != (self.size.high <= 1):
            raise ValueError("crop: a range must be all fractions (<= 1) or all pixels (> 1)")

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        size = sample_value(self.size, rng)
        if size <= 1:
            crop_h, crop_w = max(1, round(height * size)), max(1, round(width * size))
        else:
            crop_h = crop_w = round(size)
        if crop_h > height or crop_w > width:
            raise ValueError(f"crop: {crop_h}x{crop_w} is larger than the image {height}x{width}")
        if self.position == "center":
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
        else:
            top = int(rng.integers(0, height - crop_h, endpoint=True))
            left = int(rng.integers(0, width - crop_w, endpoint=True))
        return {"size": size, "top": top, "left": left, "height": crop_h, "width": crop_w}

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        top, left = int(params["top"]), int(params["left"])
        height, width = int(params["height"]), int(params["width"])
        if top < 0 or left < 0 or top + height > pixels.shape[0] or left + width > pixels.shape[1]:
            raise ValueError(f"crop box {params} does not fit an image of {pixels.shape[:2]}")
        return np.ascontiguousarray(pixels[top : top + height, left : left + width])

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        return self.apply(mask, params)  # indexing only: works on (H, W) as on (H, W, 3)

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        # Displacements are relative to each pixel and a crop moves the image and its original
        # alike, so the vectors stay valid as they are.
        return self.apply(flow, params)


def largest_rotated_rect(width: int, height: int, degrees: float) -> tuple[int, int]:
    """Width and height of the largest axis-aligned rectangle inside a rotated image.

    The classic closed form (the rectangle is centred; it keeps the aspect ratio unless the
    rotated image is too thin, then it touches two opposite sides).
    """
    angle = math.radians(degrees)
    sin_a, cos_a = abs(math.sin(angle)), abs(math.cos(angle))
    long_side, short_side = (width, height) if width >= height else (height, width)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        half = 0.5 * short_side
        if width >= height:
            rect_w, rect_h = half / sin_a, half / cos_a
        else:
            rect_w, rect_h = half / cos_a, half / sin_a
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        rect_w = (width * cos_a - height * sin_a) / cos_2a
        rect_h = (height * cos_a - width * sin_a) / cos_2a
    return int(rect_w), int(rect_h)


@dataclass(frozen=True)
class Rotate(Perturbation):
    """``rotate:DEGREES[:crop|expand|same]``: counter-clockwise rotation, bicubic.

    ``crop`` (default) keeps the largest centred rectangle with no border, so no synthetic flat
    corners enter the data; ``expand`` enlarges the canvas to hold the whole image and ``same``
    keeps the size; both fill the corners with black.
    """

    name: ClassVar[str] = "rotate"
    geometric: ClassVar[bool] = True
    degrees: float | Range = field(default=5.0, metadata=arg(float, low=-360.0, high=360.0))
    mode: str = field(
        default="crop",
        metadata=arg(str, choices={"crop": "crop", "expand": "expand", "same": "same"}),
    )

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"degrees": sample_value(self.degrees, rng), "mode": self.mode}

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        rotated = _rgb(_rotate(_pil(pixels), params, Image.Resampling.BICUBIC))
        return _rotation_crop(rotated, pixels.shape[:2], params)

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        # Same Pillow geometry as the pixels, nearest neighbour; the corners that the image
        # fills with black are 0 in the mask: no operation changed them.
        rotated = _mask_array(
            _rotate(_mask_image(mask), params, Image.Resampling.NEAREST), mask.dtype
        )
        return _rotation_crop(rotated, mask.shape, params)

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        # Each component is resampled as a float image at the positions the pixels come from
        # (bilinear; the filled corners get 0, i.e. no displacement, as the mask gets 0).
        dy, dx = (
            np.asarray(
                _rotate(
                    Image.fromarray(np.ascontiguousarray(flow[..., c], dtype=np.float32)),
                    params,
                    Image.Resampling.BILINEAR,
                ),
                dtype=np.float32,
            )
            for c in (0, 1)
        )
        # Pillow reads output pixel (x, y) from the input at L (x, y) + c, with
        # L = [[cos, -sin], [sin, cos]] for a counter-clockwise angle on a y-down grid. A
        # displacement f in the input is L^-1 f = L^T f in the output.
        angle = math.radians(float(params["degrees"]))
        cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        rotated = np.stack((cos * dy - sin * dx, cos * dx + sin * dy), axis=-1)
        return _rotation_crop(rotated, flow.shape[:2], params)


def _rotate(image: Image.Image, params: Params, resample: Image.Resampling) -> Image.Image:
    """Pillow's rotation about the centre, black (0) outside the rotated input."""
    return image.rotate(
        float(params["degrees"]),
        resample=resample,
        expand=params["mode"] == "expand",
        fillcolor=0,
    )


def _rotation_crop(rotated: np.ndarray, shape: tuple[int, ...], params: Params) -> np.ndarray:
    """In ``crop`` mode, the centred rectangle of a rotated array that holds no fill."""
    if params["mode"] != "crop":
        return rotated
    degrees = float(params["degrees"])
    height, width = shape[:2]
    rect_w, rect_h = largest_rotated_rect(width, height, degrees)
    if degrees % 90 != 0:
        # One pixel less on each side: the bicubic kernel mixes the black fill into the
        # outermost interpolated pixels along the exact boundary.
        rect_w, rect_h = rect_w - 2, rect_h - 2
    rect_w, rect_h = max(1, min(rect_w, width)), max(1, min(rect_h, height))
    top, left = (height - rect_h) // 2, (width - rect_w) // 2
    return np.ascontiguousarray(rotated[top : top + rect_h, left : left + rect_w])


# --- colour -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gamma(Perturbation):
    """``gamma:GAMMA``: ``out = 255 * (in / 255) ** GAMMA`` (> 1 darkens, < 1 brightens)."""

    name: ClassVar[str] = "gamma"
    gamma: float | Range = field(default=1.2, metadata=arg(float, low=0.05, high=20.0))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {"gamma": sample_value(self.gamma, rng)}

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        table = _to_uint8(255.0 * (np.arange(256) / 255.0) ** float(params["gamma"]))
        return table[pixels]


@dataclass(frozen=True)
class ColorJitter(Perturbation):
    """``jitter:BRIGHTNESS:CONTRAST:SATURATION:HUE``: torchvision-style colour jitter.

    Factors are drawn uniformly from ``[max(0, 1 - v), 1 + v]`` for brightness, contrast and
    saturation, the hue shift from ``[-HUE, HUE]`` (fraction of the hue circle, at most 0.5);
    0 leaves that property unchanged. Applied in that fixed order (torchvision shuffles it) with
    Pillow's ImageEnhance and an HSV hue rotation.
    """

    name: ClassVar[str] = "jitter"
    brightness: float = field(default=0.2, metadata=arg(float, low=0.0, high=1.0, rangeable=False))
    contrast: float = field(default=0.2, metadata=arg(float, low=0.0, high=1.0, rangeable=False))
    saturation: float = field(default=0.2, metadata=arg(float, low=0.0, high=1.0, rangeable=False))
    hue: float = field(default=0.0, metadata=arg(float, low=0.0, high=0.5, rangeable=False))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        def factor(strength: float) -> float:
            if strength == 0:
                return 1.0
            return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength))

        return {
            "brightness": factor(self.brightness),
            "contrast": factor(self.contrast),
            "saturation": factor(self.saturation),
            "hue": float(rng.uniform(-self.hue, self.hue)) if self.hue else 0.0,
        }

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        image = _pil(pixels)
        enhancers = (
            ("brightness", ImageEnhance.Brightness),
            ("contrast", ImageEnhance.Contrast),
            ("saturation", ImageEnhance.Color),
        )
        for key, enhancer in enhancers:
            if float(params[key]) != 1.0:  # skipped: factor 1 is the identity, save the work
                image = enhancer(image).enhance(float(params[key]))
        hue = float(params["hue"])
        if hue:
            # Pillow's hue channel spans 0-255 for the full circle; rotate it through a table.
            shift = round(hue * 256)
            h, s, v = image.convert("HSV").split()
            h = h.point([(i + shift) % 256 for i in range(256)])
            image = Image.merge("HSV", (h, s, v))
        return _rgb(image)


@dataclass(frozen=True)
class Grayscale(Perturbation):
    """``grayscale``: ITU-R 601 luma (Pillow's ``L``), copied to the three RGB channels."""

    name: ClassVar[str] = "grayscale"

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        return {}

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        grey = np.asarray(_pil(pixels).convert("L"))
        return np.repeat(grey[:, :, None], 3, axis=2)


# --- composition --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain(Perturbation):
    """Steps applied in order, all drawing from one generator; ``params["steps"]`` holds the
    record of each step. The encoded bytes are those of the last step, if it is a codec."""

    name: ClassVar[str] = "chain"
    steps: tuple[Perturbation, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        for step in self.steps:
            if not isinstance(step, Perturbation):
                raise ValueError(f"chain steps must be perturbations, got {step!r}")

    @property
    def geometric(self) -> bool:  # type: ignore[override]
        return any(step.geometric for step in self.steps)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        raise NotImplementedError("a chain samples step by step, see forward()")

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        return self.run(pixels, params)[0]

    def forward(
        self, pixels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, Params, Encoded | None]:
        records: list[Params] = []
        encoded: Encoded | None = None
        for step in self.steps:
            # Each step samples from the image as the previous steps left it (crop offsets
            # depend on the current size), so sampling and applying interleave.
            pixels, params, encoded = step.forward(pixels, rng)
            records.append({"name": step.name, "params": params})
        return pixels, {"steps": records}, encoded

    def run(self, pixels: np.ndarray, params: Params) -> tuple[np.ndarray, Encoded | None]:
        encoded: Encoded | None = None
        for record in params["steps"]:
            step = _instance(record["name"])
            pixels, encoded = step.run(pixels, record["params"])
        return pixels, encoded

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        for record in params["steps"]:
            mask = _instance(record["name"]).apply_mask(mask, record["params"])
        return mask

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        for record in params["steps"]:
            flow = _instance(record["name"]).apply_flow(flow, record["params"])
        return flow

    def config(self) -> Params:
        return {"name": self.name, "steps": [step.config() for step in self.steps]}

    def spec(self) -> str:
        """A spec string for the steps (configurations, ranges unsampled)."""
        return _STEP_SEPARATOR.join(_step_spec(step) for step in self.steps)


def _step_spec(step: Perturbation) -> str:
    if isinstance(step, Social):
        return f"{step.name}:{step.preset}"
    parts = [step.name]
    for name, spec in _args(type(step)):
        value = getattr(step, name)
        if value is None:
            continue
        if spec.kind is str and spec.choices:
            word = next(w for w, v in spec.choices.items() if v == value)
            parts.append(word)
        else:
            parts.append(f"{name}={value}")
    return _ARG_SEPARATOR.join(parts)


# Upload pipelines of social networks, as APPROXIMATIONS: platforms do not publish them and
# change them often. Sizes and quality ranges follow public reports and forensic studies of
# shared images (long side ~2048 px for Facebook's high-resolution uploads, 1080 px for
# Instagram, 4096 px for X/Twitter, ~1600 px for WhatsApp; JPEG roughly q71-85); real platforms
# also strip metadata, may sharpen, and pick the quality from the content. Use them as
# plausible, reproducible stand-ins, not as replicas.
SOCIAL_PRESETS: dict[str, str] = {
    "facebook": "longside:2048:lanczos,jpeg:71-85",
    "instagram": "longside:1080:lanczos,jpeg:70-85",
    "twitter": "longside:4096:lanczos,jpeg:85",
    "whatsapp": "longside:1600:lanczos,jpeg:60-80",
}


@dataclass(frozen=True)
class Social(Perturbation):
    """``social:PRESET``: an approximate social-network upload (resize the long side, then JPEG).

    Presets (see :data:`SOCIAL_PRESETS`; approximations, not replicas): facebook (long side
    2048, JPEG q71-85), instagram (1080, q70-85), twitter (4096, q85), whatsapp (1600, q60-80).
    """

    name: ClassVar[str] = "social"
    geometric: ClassVar[bool] = True
    preset: str = field(
        default="facebook",
        metadata=arg(str, choices={name: name for name in SOCIAL_PRESETS}, rangeable=False),
    )

    @property
    def chain(self) -> Chain:
        return parse_spec(SOCIAL_PRESETS[self.preset])

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Params:
        raise NotImplementedError("a preset samples step by step, see forward()")

    def apply(self, pixels: np.ndarray, params: Params) -> np.ndarray:
        return self.run(pixels, params)[0]

    def forward(
        self, pixels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, Params, Encoded | None]:
        out, params, encoded = self.chain.forward(pixels, rng)
        return out, {"preset": self.preset, **params}, encoded

    def run(self, pixels: np.ndarray, params: Params) -> tuple[np.ndarray, Encoded | None]:
        return Chain().run(pixels, params)

    def apply_mask(self, mask: np.ndarray, params: Params) -> np.ndarray:
        return Chain().apply_mask(mask, params)

    def apply_flow(self, flow: np.ndarray, params: Params) -> np.ndarray:
        return Chain().apply_flow(flow, params)

    def config(self) -> Params:
        return {"name": self.name, "preset": self.preset, "spec": SOCIAL_PRESETS[self.preset]}


# --- registry, parsing, replay ------------------------------------------------------------------

PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.name: cls
    for cls in (
        JPEG,
        WebP,
        GaussianBlur,
        GaussianNoise,
        Resize,
        LongSide,
        Crop,
        Rotate,
        Gamma,
        ColorJitter,
        Grayscale,
        Social,
    )
}
# Records may also name a chain (a chain of chains, or a Chain's own record).
_REPLAYABLE: dict[str, type[Perturbation]] = {**PERTURBATIONS, Chain.name: Chain}


def _instance(name: str) -> Perturbation:
    """A default instance, enough to replay: applying reads only the recorded params."""
    try:
        return _REPLAYABLE[name]()
    except KeyError:
        raise ValueError(
            f"unknown perturbation {name!r}; valid names: {', '.join(_REPLAYABLE)}"
        ) from None


def parse_step(text: str) -> Perturbation:
    """One ``name[:arg...]`` step."""
    name, *tokens = (part.strip() for part in text.strip().split(_ARG_SEPARATOR))
    cls = PERTURBATIONS.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown perturbation {name!r}; valid names: {', '.join(PERTURBATIONS)}")
    if any(not token for token in tokens):
        raise ValueError(f"empty argument in {text.strip()!r}")
    return cls.from_args(tokens)


def parse_spec(spec: str) -> Chain:
    """``jpeg:75,blur:1.0,resize:0.5`` -> a :class:`Chain`; raises ValueError with the reason."""
    steps = [part for part in spec.split(_STEP_SEPARATOR)]
    if not spec.strip() or any(not part.strip() for part in steps):
        raise ValueError(
            f"empty step in spec {spec!r}; expected steps like 'jpeg:75,blur:1.0' "
            f"(valid names: {', '.join(PERTURBATIONS)})"
        )
    return Chain(tuple(parse_step(part) for part in steps))


def replay(pixels: np.ndarray, record: Mapping[str, Any]) -> Perturbed:
    """Apply a record ``{"name": ..., "params": ...}`` (from :attr:`Perturbed.record`) again."""
    return _instance(str(record["name"])).replay(pixels, dict(record["params"]))


def replay_mask(mask: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """A record's params applied to a binary mask of the image it was recorded on."""
    return _instance(str(record["name"])).replay_mask(mask, dict(record["params"]))


def replay_flow(flow: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """A record's params applied to a backward flow (H, W, 2) ``(dy, dx)`` of that image."""
    return _instance(str(record["name"])).replay_flow(flow, dict(record["params"]))


def spec_help() -> str:
    """One line per perturbation: its usage with defaults."""
    return "\n".join(cls.usage() for cls in PERTURBATIONS.values())
