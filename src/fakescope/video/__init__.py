"""Video: streaming decode with PyAV, frame scoring, video-level verdicts and time segments.

- :mod:`~fakescope.video.decode`: sniffing containers by their bytes, sampling frames (uniform or
  keyframes, with a budget) one at a time, typed errors for damaged files.
- :mod:`~fakescope.video.scan`: scoring sampled frames in batches with any calibrated model,
  aggregating them into one verdict per video, and the time segments that score as fake.
- :mod:`~fakescope.video.synth`: synthetic test videos in which a random segment of frames is
  manipulated, with the ground truth in a JSON file beside each video.

PyAV is optional (``pip install 'fakescope[video]'``); importing this package never imports it,
so image scanning works without it and a video scanned without it gets an error row that says
how to install it.
"""

from __future__ import annotations

from fakescope.video.decode import (
    DEFAULT_MAX_FRAMES,
    SAMPLING_MODES,
    CorruptVideoError,
    FrameTooLargeError,
    NoVideoStreamError,
    Sampling,
    TruncatedVideoError,
    VideoFrame,
    VideoInfo,
    VideoInputError,
    VideoReader,
    VideoSupportMissingError,
    is_video_file,
    open_video,
    sniff_video_container,
)

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "SAMPLING_MODES",
    "CorruptVideoError",
    "FrameTooLargeError",
    "NoVideoStreamError",
    "Sampling",
    "TruncatedVideoError",
    "VideoFrame",
    "VideoInfo",
    "VideoInputError",
    "VideoReader",
    "VideoSupportMissingError",
    "is_video_file",
    "open_video",
    "sniff_video_container",
]
