"""Bad video files give a clear error naming the file, from every reader the evaluator uses."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from physics_iq.errors import ValidationError, VideoReadError
from physics_iq.validation import quick_probe, validate_generated_folder
from physics_iq.video import probe, read_video, write_video
from tests.datasets import build_tiny_dataset


def _clip(n=40):
    frames = np.zeros((n, 32, 48, 3), np.uint8)
    for t in range(n):
        frames[t, 8:16, t : t + 8] = 200
    return frames


def _write_faststart(path, frames, fps=8):
    # Index (moov) at the front: a truncated copy still opens and shows fewer packets.
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, _clip(), 8)
    data = good.read_bytes()
    out = {"good": good}
    out["truncated"] = tmp_path / "truncated.mp4"
    out["truncated"].write_bytes(data[: len(data) // 2])
    out["text"] = tmp_path / "text.mp4"
    out["text"].write_text("definitely not a video\n" * 20)
    out["empty"] = tmp_path / "empty.mp4"
    out["empty"].write_bytes(b"")
    out["missing"] = tmp_path / "missing.mp4"
    return out


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "missing"])
@pytest.mark.parametrize(
    "reader", [quick_probe, probe, read_video], ids=["quick_probe", "probe", "read_video"]
)
def test_bad_files_raise_video_read_error_naming_the_file(files, kind, reader):
    with pytest.raises(VideoReadError) as info:
        reader(files[kind])
    assert str(files[kind]) in str(info.value)


def test_quick_probe_counts_frames_without_decoding(files):
    info = quick_probe(files["good"])
    assert (info.frame_count, info.fps, info.width, info.height) == (40, 8.0, 48, 32)
    assert info.duration == 5.0


def test_truncated_faststart_file_is_caught_by_validation(tmp_path):
    layout = build_tiny_dataset(tmp_path / "ds", n_scenarios=1)
    gen = tmp_path / "gen"
    gen.mkdir()
    for row in layout.take1_rows():
        frames, _ = read_video(layout.testing_video(row, 8))
        _write_faststart(gen / row.generated_video_name, frames)
    victim = gen / layout.take1_rows()[0].generated_video_name
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValidationError) as info:
        validate_generated_folder(layout, gen)
    text = str(info.value)
    assert victim.name in text
    assert "shorter than 5 s" in text or "cannot read as a video" in text


def test_frames_are_the_same_with_and_without_ffmpeg_frame_threads(tmp_path):
    from physics_iq.video import iter_frames

    path = tmp_path / "clip.mp4"
    write_video(path, _clip(), 8)
    threaded = np.stack(list(iter_frames(path)))
    single = np.stack(list(iter_frames(path, frame_threads=False)))
    assert threaded.shape == (40, *_clip().shape[1:]) and np.array_equal(threaded, single)
