"""The frozen CLIP image encoder behind the probe: an ONNX model run with onnxruntime.

:class:`ClipEncoder` turns RGB ``uint8`` images into L2-normalised embeddings, shape (n, dim):
CLIP preprocessing (:data:`fakescope.nn.preprocess.CLIP`: short side resized to 224 bicubic,
centre crop, CLIP mean/std), batched ``session.run`` calls, one row per image.

The model file comes from :func:`fakescope.weights.resolve_weights` unless a path is given, and
is identified by its SHA-256: a probe is only valid on the exact encoder it was fitted on, so
the detector records that digest and refuses another file at load.

:class:`CachedEncoder` wraps any encoder with an on-disk cache of embeddings (one ``.npy`` per
image, keyed by the pixels' and the encoder's digests), because embedding is the slow step.

onnxruntime is imported only when a session is opened, so this module (and the detector
registry) imports without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fakescope.errors import ModelError
from fakescope.nn.preprocess import CLIP, InputConfig

if TYPE_CHECKING:
    import onnxruntime

#: The weights name of the default encoder (``fakescope weights fetch clip-vit-b16-int8``).
ENCODER_NAME = "clip-vit-b16-int8"
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "image_embeds"
ONNX_HINT = "pip install -e .[onnx]"
CACHE_ENV_VAR = "FAKESCOPE_CACHE"
DEFAULT_CACHE_ROOT = Path("~/.cache/fakescope")

ProgressCallback = Callable[[int, int], None]


class OnnxRuntimeMissingError(ModelError, ImportError):
    """onnxruntime is not installed; the CLIP encoder cannot run."""


class Encoder(Protocol):
    """What the detector needs from an encoder (a test can inject any object like this)."""

    @property
    def name(self) -> str:
        """A short name, recorded in saved detectors."""
        ...

    @property
    def sha256(self) -> str:
        """The digest of the model file: the encoder's identity."""
        ...

    @property
    def runtime(self) -> str:
        """What runs the model, with its version (``"onnxruntime 1.32.0"``)."""
        ...

    @property
    def dim(self) -> int:
        """Embedding length."""
        ...

    def embed(
        self, images: Sequence[np.ndarray], on_progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """(n, dim) float32 embeddings with unit L2 norm, one row per image."""
        ...


# -- preprocessing ---------------------------------------------------------------------------
def preprocess(images: Sequence[np.ndarray], config: InputConfig = CLIP) -> np.ndarray:
    """RGB ``uint8`` images of any size -> (n, 3, S, S) float32 network input.

    ``config`` must resize (CLIP does): the encoder needs one fixed size, and CLIP was trained
    on resized images, unlike artifact detectors that must never resample.
    """
    if not config.resize:
        raise ValueError("the CLIP encoder needs an InputConfig with resize=True")
    crops = []
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image {index}: expected an RGB uint8 (H, W, 3) array, "
                f"got {image.shape} {image.dtype}"
            )
        crops.append(config.centre_crop(image))
    size = int(config.crop_size)
    if not crops:
        return np.empty((0, 3, size, size), dtype=np.float32)
    return config.normalise(np.stack(crops))


def l2_normalise(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (UnivFD compares normalised CLIP features)."""
    array = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, np.float32(1e-12))


# -- identity --------------------------------------------------------------------------------
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime): hashing 90 MB on every load is waste."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_MEMO:
        with path.open("rb") as handle:
            _SHA_MEMO[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _SHA_MEMO[key]


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxRuntimeMissingError(
            f"the CLIP encoder needs onnxruntime, which is not installed: {ONNX_HINT}"
        ) from exc
    return onnxruntime


def onnxruntime_version() -> str:
    return f"onnxruntime {_import_onnxruntime().__version__}"


# -- the encoder -----------------------------------------------------------------------------
class ClipEncoder:
    """CLIP image encoder from an ONNX file with input ``pixel_values`` [batch, 3, 224, 224]
    and output ``image_embeds`` [batch, dim].

    ``model_path=None`` asks :func:`fakescope.weights.resolve_weights` for ``name``, which
    raises a :class:`~fakescope.errors.ModelError` naming the fetch command when the file is
    missing. ``threads`` sets onnxruntime's intra-op threads (0: its default, one per core);
    ``batch_size`` images go through each ``session.run``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        threads: int = 0,
        batch_size: int = 16,
        name: str = ENCODER_NAME,
        input_config: InputConfig = CLIP,
    ) -> None:
        if int(threads) < 0:
            raise ValueError(f"threads must be 0 (onnxruntime's default) or more, got {threads}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if model_path is None:
            model_path = _resolve(name)
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"CLIP encoder model {self.model_path} is not a file")
        self.threads = int(threads)
        self.batch_size = int(batch_size)
        self._name = name
        self.input_config = input_config
        self._session: onnxruntime.InferenceSession | None = None

    def __repr__(self) -> str:
        return f"ClipEncoder({str(self.model_path)!r}, threads={self.threads})"

    # The session holds native state that cannot be pickled; it is reopened on first use, so a
    # detector can still be sent to worker processes.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_session": None}

    @property
    def name(self) -> str:
        return self._name

    @property
    def sha256(self) -> str:
        return file_sha256(self.model_path)

    @property
    def runtime(self) -> str:
        return onnxruntime_version()

    @property
    def dim(self) -> int:
        outputs = {node.name: node.shape for node in self._open().get_outputs()}
        return int(outputs[OUTPUT_NAME][1])

    def _open(self) -> onnxruntime.InferenceSession:
        if self._session is not None:
            return self._session
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        # One graph, run sequentially: inter-op threads would only compete for the same cores.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for bad or foreign files
            raise ModelError(f"cannot open CLIP encoder {self.model_path}: {exc}") from exc
        self._check_io(session)
        self._session = session
        return session

    def _check_io(self, session: onnxruntime.InferenceSession) -> None:
        inputs = {node.name: node.shape for node in session.get_inputs()}
        outputs = {node.name: node.shape for node in session.get_outputs()}
        size = int(self.input_config.crop_size)
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelError(
                f"{self.model_path} is not a CLIP image encoder: it needs input {INPUT_NAME!r} "
                f"and output {OUTPUT_NAME!r}, it has {sorted(inputs)} -> {sorted(outputs)}"
            )
        if list(inputs[INPUT_NAME])[1:] != [3, size, size]:
            raise ModelError(
                f"{self.model_path}: input {INPUT_NAME!r} has shape {inputs[INPUT_NAME]}, "
                f"expected [batch, 3, {size}, {size}]"
            )
        out_shape = list(outputs[OUTPUT_NAME])
        if len(out_shape) != 2 or not isinstance(out_shape[1], int) or out_shape[1] < 1:
            raise ModelError(
                f"{self.model_path}: output {OUTPUT_NAME!r} has shape {out_shape}, "
                "expected [batch, dim] with a fixed dim"
            )

    def embed(
        self, images: Sequence[np.ndarray], on_progress: ProgressCallback | None = None
    ) -> np.ndarray:
        session = self._open()
        dim = self.dim
        out = np.empty((len(images), dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            # Only the embedding is fetched; this model also exposes the hidden states.
            raw = session.run([OUTPUT_NAME], {INPUT_NAME: preprocess(chunk, self.input_config)})
            batch = np.asarray(raw[0], dtype=np.float32)
            if batch.shape != (len(chunk), dim) or not np.isfinite(batch).all():
                raise ModelError(
                    f"CLIP encoder returned {batch.shape} or non-finite values for "
                    f"{len(chunk)} images"
                )
            out[start : start + len(chunk)] = l2_normalise(batch)
            if on_progress is not None:
                on_progress(start + len(chunk), len(images))
        return out


def _resolve(name: str) -> Path:
    # Imported here: the resolver is optional machinery, and importing the detector (e.g. to
    # list the registry) must not require it.
    try:
        from fakescope.weights import resolve_weights
    except ImportError as exc:
        raise ModelError(
            f"cannot locate the {name!r} encoder: fakescope.weights is unavailable ({exc}); "
            "pass the model file's path explicitly"
        ) from exc
    return Path(resolve_weights(name))


# -- embedding cache -------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$FAKESCOPE_CACHE/embeddings`` if the variable is set, else ``~/.cache/fakescope/...``."""
    root = os.environ.get(CACHE_ENV_VAR) or str(DEFAULT_CACHE_ROOT)
    return Path(root).expanduser() / "embeddings"


def image_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of an image's shape and pixel bytes: the same pixels from any file, one key."""
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    digest = hashlib.sha256(repr(array.shape).encode("ascii"))
    digest.update(array.tobytes())
    return digest.hexdigest()


class CachedEncoder:
    """An encoder whose embeddings are kept on disk, one ``.npy`` per image.

    Layout: ``<root>/<encoder key>/<sha[:2]>/<sha>.npy``, where the encoder key is a digest of
    the encoder's name, file SHA-256, runtime version and dim, so embeddings from another model
    or onnxruntime build (INT8 outputs differ between versions) are never mixed in. Files are
    written to a temporary name and renamed (readers never see half a file), read with
    ``allow_pickle=False``, and any unreadable or wrongly shaped entry is recomputed.
    """

    def __init__(self, encoder: Encoder, root: str | Path | None = None) -> None:
        self.encoder = encoder
        self.root = Path(root) if root is not None else default_cache_dir()

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def sha256(self) -> str:
        return self.encoder.sha256

    @property
    def runtime(self) -> str:
        return self.encoder.runtime

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def folder(self) -> Path:
        identity = {
            "name": self.name,
            "sha256": self.sha256,
            "runtime": self.runtime,
            "dim": self.dim,
        }
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return self.root / key[:16]

    def embed(
        self, images: Sequence[np.ndarray], on_progress: ProgressCallback | None = None
    ) -> np.ndarray:
        folder, dim = self.folder(), self.dim
        paths = [folder / key[:2] / f"{key}.npy" for key in map(image_sha256, images)]
        out = np.empty((len(images), dim), dtype=np.float32)
        missing = []
        for index, path in enumerate(paths):
            cached = _read_embedding(path, dim)
            if cached is None:
                missing.append(index)
            else:
                out[index] = cached
        hits = len(images) - len(missing)
        if on_progress is not None and hits:
            on_progress(hits, len(images))
        if missing:

            def progress(done: int, _total: int) -> None:
                if on_progress is not None:
                    on_progress(hits + done, len(images))

            fresh = self.encoder.embed([images[i] for i in missing], progress)
            out[missing] = fresh
            try:
                for index in missing:
                    _write_embedding(paths[index], out[index])
            except OSError as exc:  # a cache that cannot be written costs time, not results
                warnings.warn(f"embedding cache {self.root} is not writable: {exc}", stacklevel=2)
        return out


def _read_embedding(path: Path, dim: int) -> np.ndarray | None:
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError):  # absent, truncated or not an .npy: recompute
        return None
    if value.shape != (dim,) or value.dtype != np.float32 or not np.isfinite(value).all():
        return None
    return value


def _write_embedding(path: Path, row: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.save(handle, np.asarray(row, dtype=np.float32))
        os.replace(temporary, path)  # atomic: a reader sees the old file or the whole new one
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
