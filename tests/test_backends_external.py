"""External generators: a folder of precomputed videos and a command run as an argument list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from generators import GENERATORS
from generators.base import GenerationError, GenerationRequest
from generators.external import prompt_hash
from physics_iq.video import write_video


def request(seed: int = 0, prompt: str = "the ball falls", num_frames: int = 8) -> GenerationRequest:
    prefix = np.full((1, 24, 32, 3), 100, np.uint8)
    return GenerationRequest(prefix, 8.0, prompt, seed, num_frames, context={"take1_id": 7, "scenario": "x"})


def ramp(count: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Frames whose brightness encodes their index (10, 20, ...), so resampling can be checked."""
    return np.stack([np.full((*size, 3), 10 * (i + 1), np.uint8) for i in range(count)])


def test_folder_prefers_prompt_and_seed_specific_files_and_fits_the_contract(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "0007.mp4", ramp(17), 16)
    write_video(folder / f"0007_{prompt_hash('the ball falls')}_seed0.mp4", ramp(17), 16)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    generator = GENERATORS.resolve("folder")(model=str(folder), includes_switch_frame="true")
    video = generator.generate(request())
    assert video.frames.shape == (8, 24, 32, 3) and video.fps == 8.0
    assert video.metadata["source"].endswith("_seed0.mp4")
    # 16 frames after the switch frame at 16 fps -> 8 at 8 fps; brightness rises from frame 2 (20) onwards.
    assert 15 <= video.frames[0].mean() <= 25 and video.frames[-1].mean() > 150
    other = generator.generate(request(seed=1))  # no seed-1 file: the per-scenario video
    assert other.metadata["source"].endswith("0007.mp4")
    assert before == {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}  # inputs untouched


def test_folder_missing_video_names_the_files_and_writes_a_request(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    generator = GENERATORS.resolve("folder")(
        model=str(tmp_path / "videos"), requests_dir=str(tmp_path / "todo")
    )
    with pytest.raises(
        GenerationError, match=r"looked for 0007_[0-9a-f]{12}_seed3\.mp4, 0007_seed3\.mp4, 0007\.mp4"
    ):
        generator.generate(request(seed=3))
    (written,) = (tmp_path / "todo").iterdir()
    record = json.loads(written.read_text())
    assert record["prompt"] == "the ball falls" and record["seed"] == 3 and record["num_frames"] == 8


def test_folder_too_short_video_is_an_error(tmp_path: Path) -> None:
    write_video(tmp_path / "0007.mp4", ramp(4), 8)
    with pytest.raises(GenerationError, match=r"4 frames at 8\.0 fps after the switch frame, need 8"):
        GENERATORS.resolve("folder")(model=str(tmp_path)).generate(request())


def test_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a folder"):
        GENERATORS.resolve("folder")(model=str(tmp_path / "missing"))


_FAKE_MODEL = """
import json, sys, time
import numpy as np
from physics_iq.video import read_video, write_video
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
json.dump(sys.argv[1:], open(args["--log"], "w"))
mode = args.get("--mode", "ok")
if mode == "fail":
    print("CUDA error: out of memory", file=sys.stderr)
    sys.exit(3)
if mode == "hang":
    time.sleep(30)
if mode == "ok":
    image = read_video(args["--prefix"])[0][-1]
    frames = np.repeat(image[None], int(args["--frames"]), axis=0)
    write_video(args["--out"], frames, float(args["--fps"]))
"""


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    script = tmp_path / "fake_model.py"
    script.write_text(_FAKE_MODEL)
    return script


def command(script: Path, log: Path, mode: str = "ok") -> str:
    return (
        f"{sys.executable} {script} --prefix {{{{ prefix_video }}}} --prompt {{{{ prompt }}}} "
        f"--seed {{{{ seed }}}} --frames 16 --fps 16 --out {{{{ output }}}} --log {log} --mode {mode}"
    )


def test_command_runs_without_a_shell_and_fits_the_output(tmp_path: Path, fake_model: Path) -> None:
    log = tmp_path / "argv.json"
    generator = GENERATORS.resolve("command")(command=command(fake_model, log), timeout="60")
    tricky = "ball falls; rm -rf / $(echo no) 'quoted'"
    video = generator.generate(request(prompt=tricky))
    assert video.frames.shape == (8, 24, 32, 3)
    assert abs(int(video.frames.mean()) - 100) <= 3  # the switch frame, through the codec twice
    argv = json.loads(log.read_text())
    assert argv[argv.index("--prompt") + 1] == tricky  # one argument, no shell interpretation
    assert argv[argv.index("--seed") + 1] == "0"


@pytest.mark.parametrize(
    ("mode", "timeout", "match"),
    [
        pytest.param("fail", "60", "exited with status 3: CUDA error: out of memory", id="nonzero-exit"),
        pytest.param("hang", "1", "timed out after 1.0 s", id="timeout"),
        pytest.param("silent", "60", "wrote no video", id="missing-output"),
    ],
)
def test_command_failures_are_generation_errors(
    tmp_path: Path, fake_model: Path, mode: str, timeout: str, match: str
) -> None:
    generator = GENERATORS.resolve("command")(
        command=command(fake_model, tmp_path / "a.json", mode), timeout=timeout
    )
    with pytest.raises(GenerationError, match=match):
        generator.generate(request())


def test_command_template_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'promt' is undefined"):
        GENERATORS.resolve("command")(command="gen {{ promt }}").generate(request())
    with pytest.raises(GenerationError, match="program not found"):
        GENERATORS.resolve("command")(command=str(tmp_path / "no-such-program")).generate(request())
