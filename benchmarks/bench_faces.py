"""Benchmark the MTCNN face detector: milliseconds per frame by frame size and minimum face.

Run as ``python benchmarks/bench_faces.py [--threads 1] [--repeat 5]`` after
``fakescope weights fetch mtcnn-pnet mtcnn-rnet mtcnn-onet`` (one each).

Frames are real photos with one face each (scikit-image's ``astronaut``, matplotlib's
``grace_hopper``), scaled (aspect kept) to the frame height and pasted in the middle of
scikit-image's ``coffee`` stretched to 640x360, 1280x720 or 1920x1080: a face-free background,
so the frame has the pixel count of the size and one face. The detector's cost depends on the
pixel count and on ``min_face_size``, which sets the first level of the image pyramid. One
untimed warm-up call per setting, then the median of ``--repeat`` calls, as wall time and as
process CPU time (the CPU time is the steadier number on a machine shared with other jobs).
``torch.set_num_threads(--threads)``. Nothing asserts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from fakescope.video.faces import MTCNN

SIZES = ((640, 360), (1280, 720), (1920, 1080))


def sample_frames() -> dict[str, Image.Image]:
    from matplotlib import cbook
    from skimage import data

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        grace = image.convert("RGB")
    return {"astronaut": Image.fromarray(data.astronaut()), "grace_hopper": grace}


def compose(picture: Image.Image, width: int, height: int) -> np.ndarray:
    from skimage import data

    canvas = Image.fromarray(data.coffee()).resize((width, height))
    scaled = picture.resize((round(picture.width * height / picture.height), height))
    canvas.paste(scaled, ((width - scaled.width) // 2, 0))
    return np.asarray(canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-face", type=float, nargs="+", default=[20.0, 40.0, 80.0])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    detector = MTCNN.from_weights()
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeat}")
    print(f"{'frame':>10} {'image':>13} {'min face':>8} {'wall ms':>8} {'cpu ms':>7} {'faces':>5}")
    for name, picture in sample_frames().items():
        for width, height in SIZES:
            frame = compose(picture, width, height)
            for min_face in args.min_face:
                detector.min_face_size = min_face
                found = detector.detect(frame)  # warm-up
                wall, cpu = [], []
                for _ in range(args.repeat):
                    start_wall, start_cpu = time.perf_counter(), time.process_time()
                    found = detector.detect(frame)
                    wall.append(time.perf_counter() - start_wall)
                    cpu.append(time.process_time() - start_cpu)
                print(
                    f"{width}x{height:<5} {name:>13} {min_face:>8.0f} "
                    f"{statistics.median(wall) * 1000:>8.0f} {statistics.median(cpu) * 1000:>7.0f} "
                    f"{len(found):>5}"
                )


if __name__ == "__main__":
    main()
