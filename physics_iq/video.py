"""Video I/O with exact frame counts and frame rates.

Frames everywhere in physrefine are ``uint8`` arrays of shape ``(T, H, W, 3)`` in RGB order, values 0..255.
Decoding and encoding go through PyAV (FFmpeg's libraries), which gives exact control over the frame rate
(a rational number) and the number of frames written, unlike OpenCV's writer.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from physics_iq.errors import VideoReadError, VideoWriteError

logger = logging.getLogger(__name__)

#: Frame rates the Physics-IQ benchmark is distributed at.
BENCHMARK_FPS: tuple[int, ...] = (8, 16, 24, 30)
#: Length of the part of a testing video that is scored, in seconds.
TEST_SECONDS = 5.0


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as measured by demuxing it (not from possibly wrong header fields).

    Attributes:
        path: The file.
        fps: Frames per second (the stream's average rate).
        frame_count: Number of video frames in the file.
        width: Frame width in pixels.
        height: Frame height in pixels.
    """

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Duration in seconds, ``frame_count / fps``."""
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return (self.width, self.height)


def open_for_reading(path: Path) -> av.container.InputContainer:
    """Open a video file for reading, or raise :class:`VideoReadError` saying why not (missing, empty, not a
    container, no video stream). The caller closes the container."""
    if not path.is_file():
        raise VideoReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "the file is empty")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoReadError(path, f"not a readable video container ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "the container has no video stream")
    return container


def _stream_fps(path: Path, stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or float(rate) <= 0:
        raise VideoReadError(path, "the video stream declares no frame rate")
    return float(rate)


def probe(path: str | Path) -> VideoInfo:
    """Measure a video's frame rate, frame count and size.

    The frame count is taken by decoding every frame: header counts are absent or wrong in many real files
    and a truncated file must be caught here, not later.

    Raises:
        VideoReadError: the file is missing, empty, truncated, not a video or has no decodable frame.
    """
    path = Path(path)
    container = open_for_reading(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(path, stream)
        count = 0
        width = height = 0
        for frame in container.decode(stream):
            width, height = frame.width, frame.height
            count += 1
    except (av.FFmpegError, OSError) as exc:
        raise VideoReadError(path, f"decoding failed after {count} frame(s) ({exc})") from exc
    finally:
        container.close()
    if count == 0:
        raise VideoReadError(path, "no decodable frame (truncated or empty stream)")
    return VideoInfo(path=path, fps=fps, frame_count=count, width=width, height=height)


def iter_frames(
    path: str | Path, max_frames: int | None = None, *, frame_threads: bool = True
) -> Iterator[np.ndarray]:
    """Yield the frames of a video one by one as ``(H, W, 3)`` RGB uint8 arrays.

    Args:
        path: The video file.
        max_frames: Stop after this many frames (``None``: all).
        frame_threads: Let FFmpeg decode several frames in parallel (faster for one caller; a caller that
            already decodes several files in parallel saves CPU by turning it off). Frames are identical.
    """
    path = Path(path)
    container = open_for_reading(path)
    yielded = 0
    # One reformatter for the whole clip: frame.to_ndarray(format=...) builds a new swscale context per
    # frame, which costs more than decoding; the output is bit-identical.
    reformatter = VideoReformatter()
    try:
        stream = container.streams.video[0]
        if frame_threads:
            stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if max_frames is not None and yielded >= max_frames:
                break
            yield reformatter.reformat(frame, format="rgb24").to_ndarray()
            yielded += 1
    except (av.FFmpegError, OSError) as exc:
        raise VideoReadError(path, f"decoding failed after {yielded} frame(s) ({exc})") from exc
    finally:
        container.close()
    if yielded == 0:
        raise VideoReadError(path, "no decodable frame (truncated or empty stream)")


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video into memory.

    Args:
        path: The video file.
        max_frames: Stop after this many frames (``None``: all).

    Returns:
        ``(frames, fps)`` with frames of shape ``(T, H, W, 3)``, RGB, uint8.

    Raises:
        VideoReadError: the file is missing, truncated or not a video.
    """
    path = Path(path)
    container = open_for_reading(path)
    try:
        fps = _stream_fps(path, container.streams.video[0])
    finally:
        container.close()
    frames = np.stack(list(iter_frames(path, max_frames=max_frames)))
    return frames, fps


@functools.cache
def x264_params() -> dict[str, str]:
    """Extra libx264 options that make every encode byte-reproducible on this machine and across machines.

    x264's AVX-512 code paths, used by default on CPUs that have AVX-512, encode the same frames differently
    from run to run at some sizes (measured with PyAV 18.1 on an AMD EPYC with AVX-512: 30 of 36 clips of
    96x64 varied over 10 writes each in one process, while 320x180 clips stayed stable but came out different
    from an AVX2 machine's bytes). Capping x264 at AVX2 gives the same bytes on every run and the same bytes
    as AVX2 machines (checked against numbers recorded on one); AVX-512 gains little for x264 and these
    clips are small. CPUs without AVX-512 keep x264's own detection.

    >>> set(x264_params()) <= {"x264-params"}
    True
    """
    if _cpu_has_avx512():
        # "AVX2" is x264's name for everything up to AVX2 (SSE*, AVX, FMA3, BMI1/2, LZCNT): every CPU with
        # AVX-512 has all of it, so nothing is enabled that the CPU lacks.
        return {"x264-params": "asm=AVX2"}
    return {}


def _cpu_has_avx512() -> bool:
    try:  # numpy's runtime dispatch table (checks OS support too); private, hence the fallback
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_features__  # type: ignore[no-redef]
        except ImportError:
            __cpu_features__ = {}
    if __cpu_features__:
        return bool(__cpu_features__.get("AVX512F"))
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False


def _check_frames(path: Path, frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoWriteError(path, f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] == 0:
        raise VideoWriteError(path, "no frames to write")
    if frames.dtype != np.uint8:
        raise VideoWriteError(path, f"expected uint8 frames, got {frames.dtype}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        # yuv420p (what every player and the official toolkit decode) needs even sizes.
        raise VideoWriteError(path, f"width and height must be even for H.264/yuv420p, got {width}x{height}")
    return frames


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    *,
    crf: int = 18,
    overwrite: bool = False,
) -> VideoInfo:
    """Encode frames as an H.264 mp4 holding exactly ``len(frames)`` frames at exactly ``fps``.

    The file appears atomically: it is written under a temporary name in the same folder and moved into place
    only once complete, so a crash never leaves a truncated video under the final name.

    Args:
        path: Destination ``.mp4``.
        frames: ``(T, H, W, 3)`` RGB uint8 with even H and W.
        fps: Frame rate; stored as an exact rational (``Fraction(fps).limit_denominator(1001)``).
        crf: x264 constant rate factor (lower is better quality; 0 is lossless in luma).
        overwrite: Replace an existing file. Off by default so that no input is ever overwritten by accident.

    Returns:
        The :class:`VideoInfo` of the written file.

    Raises:
        VideoWriteError: bad frames, an existing file without ``overwrite``, or an encoder failure.
    """
    path = Path(path)
    frames = _check_frames(path, frames)
    if fps <= 0:
        raise VideoWriteError(path, f"fps must be positive, got {fps}")
    if path.exists() and not overwrite:
        raise VideoWriteError(path, "the file exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    height, width = frames.shape[1:3]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4.part", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp_name, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            # No B-frames keeps decode order == presentation order, so every decoder returns all frames.
            stream.options = {"crf": str(crf), "preset": "veryfast", "bf": "0", **x264_params()}
            for index, array in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp_name, path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoWriteError(path, str(exc)) from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    logger.debug("wrote %s: %d frames at %s fps, %dx%d", path, len(frames), rate, width, height)
    return VideoInfo(path=path, fps=float(rate), frame_count=len(frames), width=width, height=height)


def frames_for_seconds(seconds: float, fps: float) -> int:
    """Number of frames that ``seconds`` of video hold at ``fps``, as the official toolkit counts them.

    >>> frames_for_seconds(5, 8), frames_for_seconds(5, 30), frames_for_seconds(5, 29.97)
    (40, 150, 149)
    """
    # int() truncation, not round(): the official fps changer uses int(duration * fps).
    return int(seconds * fps + 1e-9)


def trim(frames: np.ndarray, fps: float, seconds: float = TEST_SECONDS) -> np.ndarray:
    """Keep the first ``seconds`` of a clip (all of it if shorter).

    >>> trim(np.zeros((100, 2, 2, 3), np.uint8), fps=8).shape[0]
    40
    """
    return frames[: frames_for_seconds(seconds, fps)]


def resample_fps(frames: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Change the frame rate by linear blending between neighbouring frames, as the official toolkit does.

    The output has ``int(duration * dst_fps)`` frames where ``duration = len(frames) / src_fps``; output
    frame ``j`` sits at fractional source position ``j * (N - 1) / (M - 1)`` and blends the two source frames
    around it; the blend is truncated to uint8 (official ``astype(np.uint8)``).

    Args:
        frames: ``(N, H, W, C)`` uint8.
        src_fps: The clip's frame rate.
        dst_fps: The wanted frame rate.

    Returns:
        ``(M, H, W, C)`` uint8.

    >>> clip = np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1) * 10  # 4 frames at 4 fps: 0, 10, 20, 30
    >>> resample_fps(clip, 4, 8)[:, 0, 0, 0].tolist()  # 1 s at 8 fps: 8 frames spread over the same span
    [0, 4, 8, 12, 17, 21, 25, 30]
    """
    frames = np.asarray(frames)
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got src_fps={src_fps}, dst_fps={dst_fps}")
    n_src = len(frames)
    n_dst = frames_for_seconds(n_src / src_fps, dst_fps)
    if n_src == 0 or n_dst == 0:
        return frames[:0]
    if n_dst == 1 or n_src == 1:
        return np.repeat(frames[:1], n_dst, axis=0)
    positions = np.arange(n_dst) * (n_src - 1) / (n_dst - 1)
    lower = np.floor(positions).astype(np.int64)
    upper = np.minimum(lower + 1, n_src - 1)
    alpha = (positions - lower).astype(np.float32).reshape(-1, *([1] * (frames.ndim - 1)))
    blended = (1 - alpha) * frames[lower].astype(np.float32) + alpha * frames[upper].astype(np.float32)
    return blended.astype(np.uint8)
