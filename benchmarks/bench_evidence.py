"""Benchmark the evidence readers: scan time per file with and without them, per reader.

Run as ``python benchmarks/bench_evidence.py [--n 100] [--repeat 3] [--dq]``.

Files: ``--n`` JPEGs written to a temporary folder from photo-like sources (the repository's
``examples/*.png``, ``../shared/data/sd-v1/*.png`` and scikit-image's sample photos when
present), each resized to a long side drawn from 640-2048 px and saved at a quality drawn from
70-95; half carry camera EXIF (make, model, software, dates), a quarter an XMP packet. Seeded.

Measured, median of ``--repeat`` passes after one warm-up, for the default model:

Times are this process's CPU time (``time.process_time``; ``--wall`` for wall-clock time), so a
machine shared with other work still gives comparable numbers; numpy, scipy and the model
run single-threaded here (``OMP_NUM_THREADS=1`` is set before they load).

* ``decode``: read + decode (:func:`fakescope.io.image.decode_image_bytes`);
* ``evidence``: :func:`fakescope.evidence.collect_evidence` on the decoded file, and each
  reader alone (``open`` is Pillow re-reading the header, shared by the readers);
* ``scan without evidence`` / ``scan with evidence``: read, decode and score in batches of 16
  (:func:`fakescope.pipeline.scan.score_decoded`), the second through
  :func:`fakescope.pipeline.scan.decode_entry`, which collects the evidence.

``--dq`` also prints the double-compression test's results on single- and double-compressed
versions of the source photos (the numbers quoted in ``fakescope.evidence.jpeg``).

Nothing asserts; numbers are printed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # CPU time of one thread, comparable across runs

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from fakescope.evidence import READERS, EvidenceSource, collect_evidence
from fakescope.io.discover import InputEntry
from fakescope.io.image import LoadedImage, decode_image_bytes, read_file_bytes
from fakescope.models import load_model
from fakescope.pipeline.scan import decode_entry, score_decoded

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16
#: CPU time of this process by default: on a machine shared with other work, wall time mostly
#: measures the others (``--wall`` switches to it).
CLOCK: Callable[[], float] = time.process_time
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Photoshop 25.0"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
DQ_PAIRS = [
    (None, 98), (None, 95), (None, 90), (None, 85), (None, 75), (None, 60),
    (75, 90), (60, 85), (50, 75), (70, 80), (85, 80), (80, 95), (90, 80), (95, 75),
]  # fmt: skip


def source_photos() -> list[Path]:
    paths = sorted((ROOT / "examples").glob("real-*.png"))
    paths += sorted((ROOT.parent / "shared" / "data" / "sd-v1").glob("*.png"))
    try:
        import skimage

        data = Path(skimage.__file__).parent / "data"
        names = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg")
        paths += [data / name for name in names if (data / name).is_file()]
    except ImportError:
        pass
    return paths


def write_files(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    sources = [Image.open(path).convert("RGB") for path in source_photos()]
    files = []
    for index in range(n):
        image = sources[index % len(sources)]
        side = int(rng.integers(640, 2049))
        scale = side / max(image.size)
        resized = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
        options: dict = {"quality": int(rng.integers(70, 96))}
        if index % 2 == 0:
            exif = Image.Exif()
            exif[ExifTags.Base.Make] = "Canon"
            exif[ExifTags.Base.Model] = "Canon EOS R6"
            exif[ExifTags.Base.Software] = "Adobe Lightroom 12.0"
            exif[ExifTags.Base.DateTime] = "2024:05:01 12:00:00"
            exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:04:30 09:00:00"
            options["exif"] = exif
        if index % 4 == 1:
            options["xmp"] = XMP
        path = folder / f"photo{index:03d}.jpg"
        resized.save(path, "JPEG", **options)
        files.append(path)
    return files


def median_ms_per_file(run: Callable[[], None], files: int, repeat: int) -> float:
    run()  # warm-up: imports, caches, page cache
    times = []
    for _ in range(repeat):
        start = CLOCK()
        run()
        times.append(CLOCK() - start)
    return statistics.median(times) / files * 1000


def reader_ms_per_file(
    reader: Callable[[EvidenceSource], object],
    files: list[Path],
    data: dict[Path, bytes],
    decoded: dict[Path, LoadedImage],
    repeat: int,
) -> float:
    """One reader's time, on fresh sources whose header is already open (timed apart)."""
    times = []
    for _ in range(repeat + 1):  # the first pass warms caches and is dropped
        sources = [EvidenceSource(data[path], decoded[path]) for path in files]
        for source in sources:
            _ = source.pil  # opens the header outside the timed loop
        start = CLOCK()
        for source in sources:
            reader(source)
        times.append(CLOCK() - start)
    return statistics.median(times[1:]) / len(files) * 1000


def bench_scan(files: list[Path], repeat: int) -> None:
    model = load_model()
    data = {path: read_file_bytes(path) for path in files}
    decoded = {path: decode_image_bytes(data[path], path=str(path)) for path in files}

    def decode_only() -> None:
        for path in files:
            decode_image_bytes(read_file_bytes(path), path=str(path))

    def evidence_only() -> None:
        for path in files:
            collect_evidence(data[path], decoded[path])

    def scan(with_evidence: bool) -> None:
        for start in range(0, len(files), BATCH):
            batch = files[start : start + BATCH]
            if with_evidence:
                items = [decode_entry(InputEntry(str(p)), min_side=4) for p in batch]
            else:
                items = [decode_image_bytes(read_file_bytes(p), path=str(p)) for p in batch]
            score_decoded(items, model)

    rows = [
        ("decode", median_ms_per_file(decode_only, len(files), repeat)),
        ("evidence (all readers)", median_ms_per_file(evidence_only, len(files), repeat)),
    ]

    def open_headers() -> None:
        for path in files:
            EvidenceSource(data[path], decoded[path]).pil.close()

    rows.append(
        ("  open (shared by readers)", median_ms_per_file(open_headers, len(files), repeat))
    )
    for name, reader in READERS.items():
        rows.append((f"  reader {name}", reader_ms_per_file(reader, files, data, decoded, repeat)))
    without = median_ms_per_file(lambda: scan(False), len(files), repeat)
    with_evidence = median_ms_per_file(lambda: scan(True), len(files), repeat)
    rows += [("scan without evidence", without), ("scan with evidence", with_evidence)]
    megapixels = statistics.mean(
        img.pixels.shape[0] * img.pixels.shape[1] for img in decoded.values()
    )
    clock = "wall" if CLOCK is time.perf_counter else "CPU"
    print(f"{len(files)} JPEGs, mean {megapixels / 1e6:.2f} MP, model {model.detector.name}")
    print(f"({clock} time per file, median of {repeat} passes)")
    for name, value in rows:
        print(f"{name:<28}{value:8.1f} ms/file")
    print(f"{'evidence overhead':<28}{with_evidence - without:8.1f} ms/file "
          f"({(with_evidence / without - 1) * 100:+.0f} %)")  # fmt: skip


def bench_double_compression() -> None:
    from fakescope.evidence.jpeg import read_jpeg

    def jpeg(image: Image.Image, quality: int) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()

    photos = [Image.open(path).convert("RGB") for path in source_photos()]
    print(f"\ndouble compression on {len(photos)} photos (first -> second quality)")
    for first, second in DQ_PAIRS:
        flagged = analysed = 0
        for image in photos:
            data = jpeg(Image.open(io.BytesIO(jpeg(image, first))), second) if first else None
            data = data or jpeg(image, second)
            source = EvidenceSource(data, decode_image_bytes(data))
            analysis = read_jpeg(source)["double_compression"]
            analysed += analysis["analysed"]
            flagged += bool(analysis.get("likely"))
        label = f"{first or 'none'} -> {second}"
        print(f"{label:<12} analysed {analysed:3d}/{len(photos)}  flagged {flagged:3d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of JPEGs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dq", action="store_true", help="also the double-compression table")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not CPU time")
    args = parser.parse_args(argv)
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    if not source_photos():
        print("no source photos found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        bench_scan(write_files(Path(folder), args.n), args.repeat)
    if args.dq:
        bench_double_compression()
    return 0


if __name__ == "__main__":
    sys.exit(main())
