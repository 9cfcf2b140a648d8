"""Looks of the synthetic suite: the classic look is unchanged, the new looks film the same physics differently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from physics_iq.layout import DatasetLayout
from physics_iq.synthetic import MANIFEST_NAME, SCENARIOS, SuiteError, build_suite
from physics_iq.synthetic.build import render_take, simulate
from physics_iq.synthetic.looks import LOOKS, describe
from physics_iq.synthetic.render import camera_for
from physics_iq.video import read_video

#: SHA-256 of files of a classic suite (magnet-repel, 96x54, 8 FPS, seed 2) as written before looks existed:
#: the classic look must keep producing exactly these bytes.
CLASSIC_HASHES = {
    "split-videos/conditioning-videos/8FPS/0002_conditioning-videos_8FPS_perspective-center_take-1_"
    "synthetic-magnet-repel.mp4": "a482f311812e093926395deac1709c042fdea17e24789a678c97f2bf11ad5aaf",
    "split-videos/conditioning-videos/8FPS/0002_conditioning-videos_8FPS_perspective-center_take-1_"
    "synthetic-magnet-repel.state.json": "d8670d1b3b215d9c2b23bd3a9c3a998ca0f79e4eb9b9719205ead8babe09702d",
    "split-videos/testing-videos/8FPS/0002_testing-videos_8FPS_perspective-center_take-1_"
    "synthetic-magnet-repel.mp4": "f5961e3d87ab55c73909a0e0b494f4ece98bea52df19227e4e2b8b0c92c71cf6",
    "split-videos/testing-videos/8FPS/0002_testing-videos_8FPS_perspective-center_take-1_"
    "synthetic-magnet-repel.state.json": "f938897949366ae7eeeee51fc86ee476c88fe0aaea33ee4d3752dadd4bf11934",
}
SMALL = {"scenarios": ["synthetic-magnet-repel"], "fps": 8, "size": (96, 54), "seed": 2, "jobs": 1}


def test_classic_is_the_default_and_byte_identical_to_before(tmp_path: Path) -> None:
    layout = build_suite(tmp_path / "s", **SMALL)  # type: ignore[arg-type]
    files = json.loads((layout.root / MANIFEST_NAME).read_text())["files"]
    assert {k: files[k] for k in CLASSIC_HASHES} == CLASSIC_HASHES
    manifest = json.loads((layout.root / MANIFEST_NAME).read_text())
    assert manifest["arguments"]["style"] == "classic"


def _world_positions(layout: DatasetLayout, style: str) -> np.ndarray:
    """The state file's object positions of every take-1 testing clip, mapped back to world metres."""
    out = []
    for row in layout.take1_rows():
        state = json.loads(layout.testing_video(row, 8).with_suffix(".state.json").read_text())
        cam = camera_for(row.perspective, tuple(state["size"]), style)
        for frame in state["frames"]:
            for obj in frame["objects"]:
                x, y = obj["position_px"]
                out.append(((x + 0.5) / cam.scale + cam.x0, (cam.height - y - 0.5) / cam.scale + cam.y0))
    return np.asarray(out)


@pytest.mark.parametrize("style", ["cluttered", "room"])
def test_a_new_look_films_the_same_physics_with_other_pixels_and_words(tmp_path: Path, style: str) -> None:
    classic = build_suite(tmp_path / "classic", **SMALL)  # type: ignore[arg-type]
    styled = build_suite(tmp_path / style, style=style, **SMALL)  # type: ignore[arg-type]
    # Same world state (positions agree to the state files' rounding, 0.001 px), other framing.
    world_a, world_b = _world_positions(classic, "classic"), _world_positions(styled, style)
    assert world_a.shape == world_b.shape and np.abs(world_a - world_b).max() < 1e-3
    row = classic.take1_rows()[1]
    px_a = json.loads(classic.testing_video(row, 8).with_suffix(".state.json").read_text())["px_per_m"]
    px_b = json.loads(styled.testing_video(row, 8).with_suffix(".state.json").read_text())["px_per_m"]
    assert px_a != px_b
    frames_a, _ = read_video(classic.testing_video(row, 8))
    frames_b, _ = read_video(styled.testing_video(row, 8))
    assert np.abs(frames_a.astype(int) - frames_b.astype(int)).mean() > 20
    # The objects carry the look's colour in the state files and the descriptions name them by it.
    state = json.loads(styled.testing_video(row, 8).with_suffix(".state.json").read_text())
    assert state["objects"][0]["colour"] == list(LOOKS[style].objects["puck-magenta"].rgb)
    assert LOOKS[style].objects["puck-magenta"].colour in row_description(styled)
    assert json.loads((styled.root / MANIFEST_NAME).read_text())["arguments"]["style"] == style


def row_description(layout: DatasetLayout) -> str:
    return layout.take1_rows()[0].description


def test_a_rebuild_with_another_style_is_refused_and_unknown_styles_are_named(tmp_path: Path) -> None:
    build_suite(tmp_path / "s", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(SuiteError, match="style: 'classic' -> 'room'"):
        build_suite(tmp_path / "s", style="room", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(SuiteError, match="did you mean 'room'"):
        build_suite(tmp_path / "x", style="rooms", **SMALL)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_a_suite_written_before_looks_existed_is_reused_as_classic(tmp_path: Path) -> None:
    layout = build_suite(tmp_path / "s", **SMALL)  # type: ignore[arg-type]
    path = layout.root / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    del manifest["arguments"]["style"]
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    stamp = path.stat().st_mtime_ns
    build_suite(tmp_path / "s", **SMALL)  # type: ignore[arg-type]
    assert path.stat().st_mtime_ns == stamp  # verified and reused, nothing written
    with pytest.raises(SuiteError, match="style: 'classic' -> 'cluttered'"):
        build_suite(tmp_path / "s", style="cluttered", **SMALL)  # type: ignore[arg-type]


@pytest.mark.parametrize("style", ["cluttered", "room"])
def test_every_description_names_the_looks_colours_and_keeps_objects_in_view(style: str) -> None:
    look = LOOKS[style]
    for name, spec in SCENARIOS.items():
        text = describe(style, name, spec.description)
        assert text != spec.description and text.endswith("Static shot with no camera movement.")
        sim = simulate(name, 1, 8, 0)
        # Every object is named by the look's colour word (ice and liquids may be named by what they are).
        named = [
            look.objects[oid].colour for oid in sim.colours if not oid.startswith(("liquid", "water", "ice"))
        ]
        assert all(word in text for word in named), (name, named)
        for perspective in ("perspective-left", "perspective-center", "perspective-right"):
            cam = camera_for(perspective, (320, 180), style)
            for frame in sim.frames[20:28]:
                assert all(cam.contains(o.shape) for o in frame.objects), (style, name, perspective)


def test_the_two_new_looks_differ_in_palette_framing_and_words() -> None:
    cluttered, room = LOOKS["cluttered"], LOOKS["room"]
    assert cluttered.views != room.views and cluttered.views != LOOKS["classic"].views
    same_colour = [
        oid for oid in cluttered.objects if cluttered.objects[oid].colour == room.objects[oid].colour
    ]
    assert len(same_colour) <= 3, same_colour  # white lamp and ice: white in both
    assert not set(cluttered.descriptions.values()) & set(room.descriptions.values())
    sim = simulate("synthetic-ramp-roll-slide", 1, 8, 0)
    a = render_take(sim, "perspective-center", (160, 90), 0, "synthetic-ramp-roll-slide", 1, "cluttered")
    b = render_take(sim, "perspective-center", (160, 90), 0, "synthetic-ramp-roll-slide", 1, "room")
    assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() > 20
