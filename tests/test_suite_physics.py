"""The scenarios really simulate the physics they describe (checked on the simulator's state, not pixels)."""

from __future__ import annotations

import numpy as np

from physics_iq.synthetic.build import clip_times, simulate


def _track(name: str, object_id: str, take: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sim = simulate(name, take, 8, seed)
    pos = np.array([next(o.centroid for o in f.objects if o.id == object_id) for f in sim.frames])
    vel = np.array([next(o.velocity for o in f.objects if o.id == object_id) for f in sim.frames])
    return pos, vel


def test_ball_with_higher_restitution_bounces_higher() -> None:
    red, _ = _track("synthetic-ball-bounce", "ball-red")
    blue, _ = _track("synthetic-ball-bounce", "ball-blue")
    after = slice(32, None)  # well after the first impact
    assert red[after, 1].max() - red[after, 1].min() > 2 * (blue[after, 1].max() - blue[after, 1].min())
    assert np.allclose(red[:23], red[0])  # held still until the release after the switch frame


def test_free_fall_matches_gravity() -> None:
    _, vel = _track("synthetic-ball-bounce", "ball-red")
    times = np.array(clip_times(8))
    falling = (times > 3.0) & (times < 3.3)
    accel = np.diff(vel[falling, 1]) / np.diff(times[falling])
    assert np.allclose(accel, -9.81, atol=0.05)


def test_rolling_ball_overtakes_sliding_block_on_the_ramp() -> None:
    ball, _ = _track("synthetic-ramp-roll-slide", "ball-red")
    block, _ = _track("synthetic-ramp-roll-slide", "block-blue")
    k = 30  # 0.75 s after release
    assert ball[k, 0] - ball[23, 0] > block[k, 0] - block[23, 0] > 0.05


def test_magnet_pulls_harder_when_closer() -> None:
    _, vel = _track("synthetic-magnet-attract", "ball-green")
    speeds = vel[24:34, 0]
    assert np.all(np.diff(speeds) > 0)  # accelerating towards the magnet on its way in


def test_repelled_puck_turns_back_without_touching() -> None:
    pos, vel = _track("synthetic-magnet-repel", "puck-magenta")
    assert vel[26, 0] > 0.3  # pushed towards the magnet
    assert (vel[26:, 0] < -0.3).any()  # ... and sent back (it may bounce off the far bumper later)
    assert pos[:, 0].max() + 0.05 < 1.55  # its right face never reaches the magnet's face


def test_heated_balloon_expands_then_rises() -> None:
    sim = simulate("synthetic-balloon-heating", 1, 8, 0)
    radii = [f.objects[0].shape.radius for f in sim.frames]  # type: ignore[union-attr]
    heights = [f.objects[0].centroid[1] for f in sim.frames]
    assert radii[-1] > radii[0] * 1.05
    assert heights[-1] - heights[0] > 0.3


def test_ice_loses_height_and_water_appears() -> None:
    sim = simulate("synthetic-ice-melting", 1, 8, 0)
    ice = [next(o for o in f.objects if o.id == "ice-cyan") for f in sim.frames]
    water = [next(o for o in f.objects if o.id == "water-blue") for f in sim.frames]
    assert ice[-1].centroid[1] < ice[24].centroid[1] < ice[0].centroid[1]
    assert len(water[-1].shape.centres) > 3 * len(water[0].shape.centres)  # type: ignore[union-attr]


def test_take_two_is_a_small_perturbation_of_take_one() -> None:
    one, _ = _track("synthetic-two-ball-collision", "ball-blue", take=1)
    two, _ = _track("synthetic-two-ball-collision", "ball-blue", take=2)
    gap = np.abs(one - two).max()
    assert 0.001 < gap < 0.5
