"""Real photographs gathered offline, each with its source, licence and a stable ``photo_id``.

Two kinds of sources, neither needing a network beyond Debian's archive:

- Debian wallpaper packages (``mate-backgrounds``, ``lomiri-wallpapers-16.04``,
  ``lomiri-wallpapers-20.04``, ``plasma-workspace-wallpapers``), fetched with
  ``apt-get download`` (no root needed) and unpacked with ``dpkg-deb -x`` (nothing is installed).
- Sample images shipped inside Python packages (scikit-image, scikit-learn, matplotlib); a package
  that is not installed is skipped.

Which files count as photographs
--------------------------------
Many wallpapers are renders, vector graphics or paintings; a "real" class polluted with them would
teach a detector that anything smooth is fake. The rule is a **curated allowlist** plus a
**sanity check**:

1. Allowlist (:data:`PHOTO_ALLOWLIST`): every image file of the four packages (92 distinct files)
   was looked at, on contact sheets and at 100 % crops. A file is listed only when it is plainly a
   camera photograph. Dropped: renders and vector art (all of ``mate-backgrounds``
   ``abstract/`` and ``desktop/``, Plasma's Altai, Canopee, Cascade, Cluster, Elarun, Flow,
   FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay, Opal, PastelHills, Patak, Shell,
   Volna; Lomiri's Fossa, umang, Painting-Colors), paintings (mate's Elephants, Plasma's Autumn
   and SafeLanding), composites (Lomiri's Infinite-Sea: a Milky Way over a synthetic gradient and
   reflection), and one ambiguous file (Lomiri's analogpattern: a texture photo under a strong
   colour-gradient overlay; when in doubt, leave it out). For the Python packages only true
   photographs are listed (no synthetic, microscopy, astronomy or text images).
2. Sanity check (:func:`looks_like_photograph`): the share of pixels whose discrete Laplacian is
   (almost) exactly zero must stay below :data:`MAX_FLAT_FRACTION` (0.5). Camera sensors add
   noise everywhere, so large perfectly flat areas mean vector art or smooth renders. Every
   allowlisted file passes (worst: 0.40); 29 of the 55 excluded files fail (0.55-1.00), while
   paintings and textured renders pass, which is why the allowlist decides and this check only
   guards against a package update that puts a render under an allowlisted name.

Licences are those stated in each package's ``usr/share/doc/<package>/copyright`` (DEP-5), read at
gather time; the allowlist carries the value read when the list was made, and a mismatch is
reported. Files are deduplicated by the SHA-256 of their bytes (Plasma ships one file under many
names; symlinks are resolved).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.ndimage

from fakescope.data.records import record_columns, write_records_csv
from fakescope.errors import FakescopeError
from fakescope.io.image import load_image

DEFAULT_CACHE_DIR = Path("~/.cache/fakescope/real-sources")
CACHE_ENV_VAR = "FAKESCOPE_REAL_SOURCES"
MANIFEST_NAME = "manifest.csv"
DEBIAN_PACKAGES: tuple[str, ...] = (
    "mate-backgrounds",
    "lomiri-wallpapers-20.04",
    "lomiri-wallpapers-16.04",
    "plasma-workspace-wallpapers",
)
# Allowlisted photos measure <= 0.40, the flattest renders 0.55-1.00 (see module docstring).
MAX_FLAT_FRACTION = 0.5


class SourceError(FakescopeError, RuntimeError):
    """A source of real photographs could not be fetched or unpacked."""


@dataclass(frozen=True)
class PhotoSpec:
    """One allowlisted photograph: where it lives inside its package and what it is."""

    photo_id: str  # stable, lower-case, hyphens only: tile names use "_" as separator
    source: str  # "debian:<package>" or "pypi:<distribution>"
    original_path: str  # inside the unpacked .deb, or relative to the Python package's folder
    licence: str  # SPDX-like id as stated by the package
    author: str
    scene: str = ""  # photos of one scene share it so a split keeps them together

    @property
    def package(self) -> str:
        return self.source.split(":", 1)[1]


@dataclass(frozen=True)
class PhotoRecord:
    """One row of the manifest: a kept photograph copied into the cache."""

    photo_id: str
    scene: str
    path: str  # relative to the manifest's folder
    source: str
    source_version: str
    original_path: str
    licence: str
    author: str
    sha256: str
    width: int
    height: int
    format: str
    jpeg_quality: int | None


def _deb(pkg: str, path: str, photo_id: str, licence: str, author: str) -> PhotoSpec:
    return PhotoSpec(photo_id, f"debian:{pkg}", path, licence, author)


_LOMIRI16 = "lomiri-wallpapers-16.04"
_LOMIRI20 = "lomiri-wallpapers-20.04"
_MATE = "mate-backgrounds"
_PLASMA = "plasma-workspace-wallpapers"
_BG = "usr/share/backgrounds"
_WP = "usr/share/wallpapers"

PHOTO_ALLOWLIST: tuple[PhotoSpec, ...] = (
    # lomiri-wallpapers-16.04 (13 of 15 kept; umang is a render, analogpattern is ambiguous)
    _deb(_LOMIRI16, f"{_BG}/Bridge_by_Sander_Klootwijk.jpg", "lomiri-bridge", "CC-BY-SA-4.0",
         "Sander Klootwijk"),
    _deb(_LOMIRI16, f"{_BG}/Dragonfly_by_Bolly.jpg", "lomiri-dragonfly", "CC-BY-SA-4.0", "Bolly"),
    _deb(_LOMIRI16, f"{_BG}/Picture_0B_by_freespace.jpg", "lomiri-picture-0b", "CC-BY-4.0",
         "Trevor Freespace"),
    _deb(_LOMIRI16, f"{_BG}/Picture_1A_by_freespace.jpg", "lomiri-picture-1a", "CC-BY-4.0",
         "Trevor Freespace"),
    _deb(_LOMIRI16, f"{_BG}/Wine_by_Jakkub_Mede.jpg", "lomiri-wine", "CC-BY-4.0", "Jakub Mede"),
    _deb(_LOMIRI16, f"{_BG}/aitzgorri_by_Aitzol_Berasategi.jpg", "lomiri-aitzgorri", "CC-BY-4.0",
         "Aitzol Berasategi"),
    _deb(_LOMIRI16, f"{_BG}/free_by_Peter_Nerlich.jpg", "lomiri-free", "CC-BY-SA-4.0",
         "Peter Nerlich"),
    _deb(_LOMIRI16, f"{_BG}/friends_by_Aitzol_Berasategi.jpg", "lomiri-friends", "CC-BY-4.0",
         "Aitzol Berasategi"),
    _deb(_LOMIRI16, f"{_BG}/greentock_by_Peter_Nerlich.jpg", "lomiri-greentock", "CC-BY-SA-4.0",
         "Peter Nerlich"),
    _deb(_LOMIRI16, f"{_BG}/life_by_Aitzol_Berasategi.jpg", "lomiri-life", "CC-BY-4.0",
         "Aitzol Berasategi"),
    _deb(_LOMIRI16, f"{_BG}/picosdeeuropa_by_Aitzol_Berasategi.jpg", "lomiri-picosdeeuropa",
         "CC-BY-4.0", "Aitzol Berasategi"),
    _deb(_LOMIRI16, f"{_BG}/seeding_by_Clements_Engelhardt.jpg", "lomiri-seeding", "CC0-1.0",
         "Clemens Engelhardt"),
    _deb(_LOMIRI16, f"{_BG}/sunset_by_Aitzol_Berasategi.jpg", "lomiri-sunset", "CC-BY-4.0",
         "Aitzol Berasategi"),
    # lomiri-wallpapers-20.04 (1 of 4 kept; Fossa, Infinite-Sea, Painting-Colors are not photos)
    _deb(_LOMIRI20, f"{_BG}/Kleiber_by_Lukas_Baubkus.jpg", "lomiri-kleiber", "CC-BY-SA-3.0",
         "Lukas Baubkus"),
    # mate-backgrounds: nature/ only (abstract/ and desktop/ are graphics or paintings)
    _deb(_MATE, f"{_BG}/mate/nature/Aqua.jpg", "mate-aqua", "GPL-2+", "Charles Barbin"),
    _deb(_MATE, f"{_BG}/mate/nature/Blinds.jpg", "mate-blinds", "GPL-2+",
         "Lennart Poettering, Andrea Cimitan"),
    _deb(_MATE, f"{_BG}/mate/nature/Dune.jpg", "mate-dune", "GPL-2+",
         "Marco Cogoni, Hylke Bons"),
    _deb(_MATE, f"{_BG}/mate/nature/FreshFlower.jpg", "mate-freshflower", "GPL-2+",
         "Jens Ansorg"),
    _deb(_MATE, f"{_BG}/mate/nature/Garden.jpg", "mate-garden", "GPL-2+", "Charles Barbin"),
    _deb(_MATE, f"{_BG}/mate/nature/GreenMeadow.jpg", "mate-greenmeadow", "GPL-2+",
         "Timothy Schellhase, Lapo Calamandrei"),
    _deb(_MATE, f"{_BG}/mate/nature/LadyBird.jpg", "mate-ladybird", "GPL-2+", "Charles Barbin"),
    _deb(_MATE, f"{_BG}/mate/nature/RainDrops.jpg", "mate-raindrops", "GPL-2+",
         "blackcombwhistler07"),
    _deb(_MATE, f"{_BG}/mate/nature/Storm.jpg", "mate-storm", "GPL-2+", "Sergey Nazarov"),
    _deb(_MATE, f"{_BG}/mate/nature/TwoWings.jpg", "mate-twowings", "GPL-2+",
         "Charles Barbin, Hylke Bons"),
    _deb(_MATE, f"{_BG}/mate/nature/Wood.jpg", "mate-wood", "GPL-2+",
         "Jean-Francois Fortin Tam"),
    _deb(_MATE, f"{_BG}/mate/nature/YellowFlower.jpg", "mate-yellowflower", "GPL-2+",
         "Charles Barbin"),
    # plasma-workspace-wallpapers: the 11 photographs among 30 wallpapers. debian/copyright
    # states GPL-2+ for all files; each wallpaper's metadata.json says LGPLv3.
    _deb(_PLASMA, f"{_WP}/BytheWater/contents/images/2560x1600.jpg", "plasma-bythewater",
         "GPL-2+", "Maciej Wiklo"),
    _deb(_PLASMA, f"{_WP}/ColdRipple/contents/images/2560x1600.jpg", "plasma-coldripple",
         "GPL-2+", "Risto Saukonpaa"),
    _deb(_PLASMA, f"{_WP}/ColorfulCups/contents/images/2560x1600.jpg", "plasma-colorfulcups",
         "GPL-2+", "Dmitri Popov"),
    _deb(_PLASMA, f"{_WP}/DarkestHour/contents/images/2560x1600.jpg", "plasma-darkesthour",
         "GPL-2+", "Risto Saukonpaa"),
    _deb(_PLASMA, f"{_WP}/EveningGlow/contents/images/2560x1600.jpg", "plasma-eveningglow",
         "GPL-2+", "Ian Hex"),
    _deb(_PLASMA, f"{_WP}/FallenLeaf/contents/images/2560x1600.jpg", "plasma-fallenleaf",
         "GPL-2+", "Martin Klapetek"),
    _deb(_PLASMA, f"{_WP}/Grey/contents/images/2560x1600.jpg", "plasma-grey", "GPL-2+",
         "Sigi Sagi"),
    _deb(_PLASMA, f"{_WP}/Kite/contents/images/2560x1600.jpg", "plasma-kite", "GPL-2+",
         "Risto Saukonpaa"),
    _deb(_PLASMA, f"{_WP}/OneStandsOut/contents/images/2560x1600.jpg", "plasma-onestandsout",
         "GPL-2+", "Risto Saukonpaa"),
    _deb(_PLASMA, f"{_WP}/Path/contents/images/2560x1600.jpg", "plasma-path", "GPL-2+",
         "Risto Saukonpaa"),
    _deb(_PLASMA, f"{_WP}/summer_1am/contents/images/2560x1600.jpg", "plasma-summer-1am",
         "GPL-2+", "Risto Saukonpaa"),
    # scikit-image: true photographs only (licences from skimage.data docstrings)
    PhotoSpec("skimage-astronaut", "pypi:scikit-image", "data/astronaut.png", "public-domain",
              "NASA"),
    PhotoSpec("skimage-coffee", "pypi:scikit-image", "data/coffee.png", "CC0-1.0",
              "Rachel Michetti"),
    PhotoSpec("skimage-chelsea", "pypi:scikit-image", "data/chelsea.png", "CC0-1.0",
              "Stefan van der Walt"),
    PhotoSpec("skimage-rocket", "pypi:scikit-image", "data/rocket.jpg", "public-domain",
              "SpaceX"),
    # A stereo pair of one scene, down-sampled 4x by local mean in scikit-image; one scene so a
    # grouped split never puts one view in training and the other in testing.
    PhotoSpec("skimage-motorcycle-left", "pypi:scikit-image", "data/motorcycle_left.png",
              "Middlebury-2014 (in BSD-3-Clause scikit-image)", "Scharstein et al.",
              scene="skimage-motorcycle"),
    PhotoSpec("skimage-motorcycle-right", "pypi:scikit-image", "data/motorcycle_right.png",
              "Middlebury-2014 (in BSD-3-Clause scikit-image)", "Scharstein et al.",
              scene="skimage-motorcycle"),
    # scikit-learn (licence from sklearn/datasets/images/README.txt)
    PhotoSpec("sklearn-china", "pypi:scikit-learn", "datasets/images/china.jpg", "CC-BY-2.0",
              "danielbuechele (Flickr)"),
    PhotoSpec("sklearn-flower", "pypi:scikit-learn", "datasets/images/flower.jpg", "CC-BY-2.0",
              "vultilion (Flickr)"),
    # matplotlib: US Navy photograph, public domain
    PhotoSpec("matplotlib-grace-hopper", "pypi:matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
              "public-domain", "US Navy"),
)  # fmt: skip

# The import name whose folder ``original_path`` is relative to, per PyPI distribution.
_PYPI_IMPORT_NAMES = {
    "scikit-image": "skimage",
    "scikit-learn": "sklearn",
    "matplotlib": "matplotlib",
}


def default_cache_dir() -> Path:
    """``$FAKESCOPE_REAL_SOURCES`` if set, else ``~/.cache/fakescope/real-sources``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR).expanduser()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool, turning a missing binary or a non-zero exit into a :class:`SourceError`."""
    if shutil.which(command[0]) is None:
        raise SourceError(
            f"'{command[0]}' was not found on PATH; it is needed to fetch Debian wallpaper "
            "packages (Debian/Ubuntu only); gather with debian=False to skip them."
        )
    try:
        return subprocess.run(
            list(command), cwd=cwd, check=True, capture_output=True, text=True, timeout=900
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise SourceError(
            f"'{' '.join(command)}' failed with exit code {exc.returncode}: "
            + (detail[-1] if detail else "no output")
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"'{' '.join(command)}' timed out") from exc


def fetch_debian_package(package: str, cache_dir: Path) -> tuple[Path, str]:
    """Download (once) and unpack a .deb; return the unpacked root and the package version."""
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        # apt-get download needs no root; it writes into the current directory.
        _run(["apt-get", "download", package], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise SourceError(f"apt-get download {package} produced no .deb in {debs}")
    deb = found[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()
    root = cache_dir / "extracted" / package
    marker = root / ".extracted-from"
    if not marker.is_file() or marker.read_text() != deb.name:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(deb), str(root)])  # unpack only, nothing is installed
        marker.write_text(deb.name)
    return root, version


def python_package_dir(distribution: str) -> tuple[Path, str] | None:
    """The installed folder and version of a PyPI distribution, or None if not installed."""
    import_name = _PYPI_IMPORT_NAMES[distribution]
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version(distribution)
    except PackageNotFoundError:
        package_version = ""
    return Path(next(iter(spec.submodule_search_locations))), package_version


def parse_dep5_licences(copyright_text: str) -> list[tuple[list[str], str]]:
    """``(file patterns, licence)`` per ``Files:`` stanza of a DEP-5 copyright file, in order."""
    stanzas: list[tuple[list[str], str]] = []
    for paragraph in re.split(r"\n\s*\n", copyright_text):
        files_match = re.search(r"^Files:(.*(?:\n[ \t].*)*)", paragraph, flags=re.MULTILINE)
        licence_match = re.search(r"^License:[ \t]*(\S.*)$", paragraph, flags=re.MULTILINE)
        if files_match and licence_match:
            stanzas.append((files_match.group(1).split(), licence_match.group(1).strip()))
    return stanzas


def dep5_licence_for(copyright_text: str, installed_path: str) -> str | None:
    """The licence DEP-5 gives a file; the last matching stanza wins, as the format says.

    Patterns name paths in the *source* tree (``nature/Aqua.jpg``, ``16.04/x.jpg``), not the
    installed one, so a pattern matches when it matches a path suffix, or when its base name is
    literal (no wildcard: ``debian/*`` must not match every file) and equals the file's.
    """
    result = None
    name = installed_path.rsplit("/", 1)[-1]
    for patterns, licence in parse_dep5_licences(copyright_text):
        for pattern in patterns:
            base = pattern.rsplit("/", 1)[-1]
            if (
                fnmatch.fnmatch(installed_path, pattern)
                or fnmatch.fnmatch(installed_path, f"*/{pattern}")
                or (not any(c in base for c in "*?[") and base == name)
            ):
                result = licence
                break
    return result


def flat_fraction(grey: np.ndarray) -> float:
    """Share of pixels whose 3x3 Laplacian is (almost) exactly zero."""
    laplace = scipy.ndimage.laplace(grey.astype(np.float32), mode="reflect")
    return float(np.mean(np.abs(laplace) < 0.5))


def looks_like_photograph(pixels: np.ndarray) -> bool:
    """Sanity check for allowlisted files: sensor noise leaves few perfectly flat pixels."""
    grey = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return flat_fraction(grey) < MAX_FLAT_FRACTION


def dedup_by_sha256(records: Iterable[PhotoRecord]) -> list[PhotoRecord]:
    """Keep the first record of each distinct file content."""
    seen: set[str] = set()
    kept: list[PhotoRecord] = []
    for record in records:
        if record.sha256 not in seen:
            seen.add(record.sha256)
            kept.append(record)
    return kept


MANIFEST_COLUMNS: tuple[str, ...] = record_columns(PhotoRecord)


def write_manifest(records: Iterable[PhotoRecord], path: str | os.PathLike[str]) -> Path:
    """Write the manifest CSV (one row per photo, columns :data:`MANIFEST_COLUMNS`)."""
    return write_records_csv(records, path, PhotoRecord)


def read_manifest(path: str | os.PathLike[str]) -> list[PhotoRecord]:
    """Read a manifest written by :func:`write_manifest`."""
    records = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            records.append(
                PhotoRecord(
                    **{
                        **row,
                        "width": int(row["width"]),
                        "height": int(row["height"]),
                        "jpeg_quality": int(row["jpeg_quality"]) if row["jpeg_quality"] else None,
                    }
                )
            )
    return records


def _keep(
    spec: PhotoSpec, file: Path, version: str, cache_dir: Path, check: bool
) -> PhotoRecord | None:
    """Copy an allowlisted file into ``cache_dir/photos`` and describe it, or None if it fails."""
    loaded = load_image(file)
    if check and not looks_like_photograph(loaded.pixels):
        warnings.warn(f"{spec.photo_id}: {file} fails the photograph check; skipped", stacklevel=3)
        return None
    suffix = ".jpg" if loaded.metadata.format in ("JPEG", "MPO") else file.suffix.lower()
    target = cache_dir / "photos" / f"{spec.photo_id}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or sha256_file(target) != loaded.sha256:
        shutil.copyfile(file, target)  # copyfile follows symlinks: the bytes, not the link
    return PhotoRecord(
        photo_id=spec.photo_id,
        scene=spec.scene or spec.photo_id,
        path=target.relative_to(cache_dir).as_posix(),
        source=spec.source,
        source_version=version,
        original_path=spec.original_path,
        licence=spec.licence,
        author=spec.author,
        sha256=loaded.sha256,
        width=loaded.metadata.width,
        height=loaded.metadata.height,
        format=loaded.metadata.format,
        jpeg_quality=loaded.metadata.jpeg_quality,
    )


def gather_real_photos(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    debian: bool = True,
    python_packages: bool = True,
    check: bool = True,
    allowlist: Sequence[PhotoSpec] = PHOTO_ALLOWLIST,
) -> list[PhotoRecord]:
    """Fetch every source, keep the allowlisted photographs, write ``manifest.csv``; return rows.

    Raises :class:`SourceError` when ``apt-get``/``dpkg-deb`` is missing or fails, or when an
    allowlisted file is absent from its package (a new package version must be re-inspected).
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    records: list[PhotoRecord] = []
    if debian:
        by_package: dict[str, list[PhotoSpec]] = {}
        for spec in allowlist:
            if spec.source.startswith("debian:"):
                by_package.setdefault(spec.package, []).append(spec)
        for package, specs in by_package.items():
            unpacked, version = fetch_debian_package(package, root)
            copyright_file = unpacked / "usr/share/doc" / package / "copyright"
            copyright_text = copyright_file.read_text(encoding="utf-8", errors="replace")
            (root / "licences").mkdir(exist_ok=True)
            shutil.copyfile(copyright_file, root / "licences" / f"{package}.copyright")
            for spec in specs:
                file = unpacked / spec.original_path
                if not file.is_file():
                    raise SourceError(
                        f"{spec.original_path} is not in {package} {version}; the allowlist "
                        "must be re-inspected for this package version"
                    )
                stated = dep5_licence_for(copyright_text, spec.original_path)
                if stated is not None and stated != spec.licence:
                    warnings.warn(
                        f"{spec.photo_id}: copyright file now says {stated!r}, "
                        f"allowlist says {spec.licence!r}",
                        stacklevel=2,
                    )
                record = _keep(spec, file, version, root, check)
                if record is not None:
                    records.append(record)
    if python_packages:
        for spec in allowlist:
            if not spec.source.startswith("pypi:"):
                continue
            located = python_package_dir(spec.package)
            if located is None:
                continue  # not installed: skipped by design
            folder, version = located
            file = folder / spec.original_path
            if not file.is_file():
                warnings.warn(f"{spec.photo_id}: {file} not found; skipped", stacklevel=2)
                continue
            record = _keep(spec, file, version, root, check)
            if record is not None:
                records.append(record)
    records = dedup_by_sha256(records)
    write_manifest(records, root / MANIFEST_NAME)
    return records
