"""The synthetic scenarios: each one a small pymunk world (or a heat/optics model on top of one).

Every scenario function takes :class:`Params` (the seed's scene variation plus, for take 2, a small physical
perturbation) and the sample times of the clip, and returns a :class:`~physics_iq.synthetic.world.SimResult`.
Releases happen at ``~2.98 s``, just after the switch frame at every benchmark frame rate (the switch frame at
30 FPS is at 2.967 s), so the outcome is in the testing clip; pushes ("launches") happen earlier so that the
conditioning clip already shows motion, as in the real benchmark.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pymunk

from physics_iq.synthetic.world import (
    GRAVITY,
    MUTED,
    PALETTE,
    TABLE_Y,
    WORLD_H,
    WORLD_W,
    Circle,
    Colour,
    Glow,
    Line,
    ObjectFrame,
    PhysicsWorld,
    Polygon,
    Reflection,
    Shadow,
    SimResult,
    StaticItem,
    WorldFrame,
    ball_frame,
    box_points,
    particles_frame,
    poly_frame,
)

STATIC_SHOT = "Static shot with no camera movement."
#: Release time of held objects (seconds since the clip start), before take-2 jitter.
RELEASE_T = 2.98


class Params:
    """Scene parameters: a seed-dependent draw, plus a small perturbation in take 2.

    Both generators are always advanced, so take 1 and take 2 of a seed see the same scene draws and differ only
    by the perturbation.

    Args:
        seed: The suite seed.
        scenario: The scenario slug (mixed into the random streams).
        take: 1 or 2.
    """

    def __init__(self, seed: int, scenario: str, take: int) -> None:
        key = zlib.crc32(scenario.encode())
        self._scene = np.random.default_rng([seed, key])
        self._jitter = np.random.default_rng([seed, key, 2])
        self.take = take

    def pick(self, lo: float, hi: float, jitter: float = 0.0) -> float:
        """A value in ``[lo, hi]`` chosen by the seed, moved by up to ``±jitter`` in take 2."""
        base = float(self._scene.uniform(lo, hi))
        delta = float(self._jitter.uniform(-jitter, jitter))
        return base + (delta if self.take == 2 else 0.0)


@dataclass(frozen=True)
class ScenarioSpec:
    """One synthetic scenario.

    Attributes:
        name: The slug used in file names (``synthetic-...``).
        category: One of the official Physics-IQ categories.
        description: The text models get, in the official style.
        simulate: ``(params, times) -> SimResult``.
        metric_from_contact: The pair of labelled things whose first contact opens the trajectory metric's
            window (recorded as ``metric_valid_from_frame`` in the state files), or ``None`` to judge the whole
            testing clip. Declared for collisions, where the motion before the contact is the conditioning's
            push continuing and the physics under test is what the contact does; ``None`` wherever the motion
            before any contact is itself the physics (a fall, a roll, an attraction).
    """

    name: str
    category: str
    description: str
    simulate: Callable[[Params, Sequence[float]], SimResult]
    metric_from_contact: tuple[str, str] | None


# ---------------------------------------------------------------------------------------------- helpers


def _table(w: PhysicsWorld, *, friction: float = 0.7, elasticity: float = 1.0) -> None:
    w.add_static_box(
        "table",
        WORLD_W / 2,
        TABLE_Y / 2,
        WORLD_W + 0.4,
        TABLE_Y,
        MUTED["wood"],
        friction=friction,
        elasticity=elasticity,
    )


def _grabber(x: float, top_y: float) -> Line:
    """The arm holding an object from above until release."""
    return Line((x, WORLD_H + 0.05), (x, top_y), 0.014, MUTED["rod"])


def _cue(x_contact: float, y: float, t: float, t_hit: float) -> Line:
    """A cue stick that slides in from the left and touches the object at ``t_hit``, then stays."""
    travel = 0.18 * (1.0 - min(max((t - (t_hit - 0.3)) / 0.3, 0.0), 1.0))
    tip = x_contact - travel
    return Line((tip - 0.45, y), (tip, y), 0.018, MUTED["rod"])


def _launch(body: pymunk.Body, speed: float, radius: float | None) -> None:
    PhysicsWorld.release(body)
    body.velocity = (speed, 0.0)
    if radius is not None:
        body.angular_velocity = -speed / radius  # rolling without slipping from the start


def _colours(*pairs: tuple[str, str]) -> dict[str, Colour]:
    return {object_id: PALETTE[colour] for object_id, colour in pairs}


# ---------------------------------------------------------------------------------------------- solid


def ball_bounce(p: Params, times: Sequence[float]) -> SimResult:
    """Two balls of different restitution dropped side by side onto a table."""
    w = PhysicsWorld()
    _table(w)
    r = 0.06
    red_x, red_y = p.pick(0.6, 0.75, 0.01), p.pick(0.76, 0.84, 0.012)
    blue_x, blue_y = p.pick(1.2, 1.35, 0.01), p.pick(0.76, 0.84, 0.012)
    release = RELEASE_T + p.pick(0, 0, 0.01)
    red = w.add_ball("ball-red", red_x, red_y, r, 0.2, elasticity=p.pick(0.86, 0.9, 0.005))
    blue = w.add_ball("ball-blue", blue_x, blue_y, r, 0.2, elasticity=p.pick(0.45, 0.5, 0.005))
    for body, _ in (red, blue):
        body.body_type = pymunk.Body.KINEMATIC

    def control(t: float) -> None:
        if t >= release:
            w.release(red[0])
            w.release(blue[0])

    def snapshot(t: float) -> WorldFrame:
        held = t < release
        decor = (_grabber(red_x, red_y + r), _grabber(blue_x, blue_y + r)) if held else ()
        return WorldFrame(
            t, (ball_frame("ball-red", *red), ball_frame("ball-blue", *blue)), decor_above=decor
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("ball-red", "red"), ("ball-blue", "blue")), frames, w.events)


def two_ball_collision(p: Params, times: Sequence[float]) -> SimResult:
    """A cue pushes a red ball into a resting blue ball; a wall on the right sends things back."""
    w = PhysicsWorld()
    _table(w)
    w.add_static_box("wall", 1.9, 0.32, 0.08, 0.4, MUTED["wood"], elasticity=0.8)
    r = 0.06
    red_x = 0.42
    red = w.add_ball("ball-red", red_x, TABLE_Y + r, r, 0.2, friction=0.5, elasticity=0.95, held=True)
    blue = w.add_ball(
        "ball-blue", p.pick(1.0, 1.12, 0.01), TABLE_Y + r, r, 0.2, friction=0.5, elasticity=0.95
    )
    t_hit = p.pick(2.55, 2.7, 0.02)
    speed = p.pick(0.8, 0.95, 0.03)

    def control(t: float) -> None:
        if t >= t_hit and red[0].body_type != pymunk.Body.DYNAMIC:
            _launch(red[0], speed, r)

    def snapshot(t: float) -> WorldFrame:
        cue = _cue(red_x - r, TABLE_Y + r, t, t_hit)
        return WorldFrame(
            t, (ball_frame("ball-red", *red), ball_frame("ball-blue", *blue)), decor_above=(cue,)
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("ball-red", "red"), ("ball-blue", "blue")), frames, w.events)


def domino_chain(p: Params, times: Sequence[float]) -> SimResult:
    """A pushed ball knocks over a row of six coloured dominoes."""
    w = PhysicsWorld()
    _table(w, elasticity=0.2)
    colours = ("orange", "yellow", "green", "cyan", "blue", "purple")
    dw, dh = 0.035, 0.2
    first = p.pick(0.74, 0.8, 0.005)
    spacing = p.pick(0.125, 0.135, 0.0)
    dominoes = []
    for i in range(len(colours)):
        x = first + i * spacing + p.pick(0, 0, 0.003)
        dominoes.append(
            w.add_box(f"domino-{i + 1}", x, TABLE_Y + dh / 2, dw, dh, 0.05, friction=0.6, elasticity=0.1)
        )
    r = 0.05
    ball_x = 0.42
    ball = w.add_ball("ball-red", ball_x, TABLE_Y + r, r, 0.3, friction=0.6, elasticity=0.2, held=True)
    t_hit = p.pick(2.7, 2.8, 0.02)
    speed = p.pick(0.9, 1.0, 0.03)

    def control(t: float) -> None:
        if t >= t_hit and ball[0].body_type != pymunk.Body.DYNAMIC:
            _launch(ball[0], speed, r)

    def snapshot(t: float) -> WorldFrame:
        objs = [ball_frame("ball-red", *ball)]
        objs += [poly_frame(f"domino-{i + 1}", *d) for i, d in enumerate(dominoes)]
        return WorldFrame(t, tuple(objs), decor_above=(_cue(ball_x - r, TABLE_Y + r, t, t_hit),))

    frames = w.run(times, control, snapshot)
    pairs = [("ball-red", "red")] + [(f"domino-{i + 1}", c) for i, c in enumerate(colours)]
    return SimResult(w.statics, _colours(*pairs), frames, w.events)


def ramp_roll_slide(p: Params, times: Sequence[float]) -> SimResult:
    """A ball (rolls) and a block (slides, with friction) released together on a ramp."""
    w = PhysicsWorld()
    _table(w, friction=1.0, elasticity=0.5)
    w.add_static_box("wall", 1.9, 0.32, 0.08, 0.4, MUTED["wood"], elasticity=0.6)
    top = np.array([0.3, TABLE_Y + 0.45])
    foot = np.array([1.1, TABLE_Y])
    w.add_static_poly(
        "ramp",
        [(0.3, TABLE_Y), (1.1, TABLE_Y), (0.3, TABLE_Y + 0.45)],
        MUTED["steel"],
        friction=1.0,
        elasticity=0.2,
    )
    down = (foot - top) / np.linalg.norm(foot - top)
    normal = np.array([-down[1], down[0]])
    if normal[1] < 0:
        normal = -normal
    angle = math.atan2(down[1], down[0])
    bw, bh, r = 0.1, 0.06, 0.05
    block_c = top + down * p.pick(0.11, 0.13, 0.005) + normal * (bh / 2 + 0.001)
    ball_c = top + down * p.pick(0.33, 0.37, 0.005) + normal * (r + 0.001)
    block = w.add_box(
        "block-blue",
        float(block_c[0]),
        float(block_c[1]),
        bw,
        bh,
        0.2,
        angle=angle,
        friction=p.pick(0.34, 0.36, 0.005),
        elasticity=0.1,
        held=True,
    )
    ball = w.add_ball(
        "ball-red", float(ball_c[0]), float(ball_c[1]), r, 0.2, friction=0.9, elasticity=0.3, held=True
    )
    release = RELEASE_T + p.pick(0, 0, 0.01)

    def control(t: float) -> None:
        if t >= release:
            w.release(block[0])
            w.release(ball[0])

    def snapshot(t: float) -> WorldFrame:
        decor: tuple[Line, ...] = ()
        if t < release:
            decor = (
                _grabber(float(block_c[0]), float(block_c[1] + bh / 2)),
                _grabber(float(ball_c[0]), float(ball_c[1] + r)),
            )
        return WorldFrame(
            t, (poly_frame("block-blue", *block), ball_frame("ball-red", *ball)), decor_above=decor
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("block-blue", "blue"), ("ball-red", "red")), frames, w.events)


def pendulum_strike(p: Params, times: Sequence[float]) -> SimResult:
    """A pendulum bob released from an angle strikes a block resting on the table."""
    w = PhysicsWorld()
    _table(w, friction=0.5, elasticity=0.3)
    pivot = (0.95, 0.97)
    r = 0.06
    length = pivot[1] - (TABLE_Y + 0.07)
    theta = math.radians(p.pick(42, 50, 1.5))
    bob_pos = (pivot[0] - length * math.sin(theta), pivot[1] - length * math.cos(theta))
    bob = w.add_ball("bob-orange", *bob_pos, r, 0.5, friction=0.3, elasticity=0.6, held=True)
    bs = 0.12
    block = w.add_box(
        "block-blue",
        pivot[0] + r + bs / 2 + 0.004,
        TABLE_Y + bs / 2,
        bs,
        bs,
        0.4,
        friction=0.6,
        elasticity=0.3,
    )
    release = RELEASE_T + p.pick(0, 0, 0.01)
    joined: list[pymunk.Constraint] = []

    def control(t: float) -> None:
        if t >= release and not joined:
            w.release(bob[0])
            joint = pymunk.PinJoint(w.space.static_body, bob[0], pivot, (0, 0))
            w.space.add(joint)
            joined.append(joint)

    def snapshot(t: float) -> WorldFrame:
        rod = Line(pivot, (float(bob[0].position.x), float(bob[0].position.y)), 0.012, MUTED["rod"])
        mount = Glow(pivot, 0.02, MUTED["rod"])
        return WorldFrame(
            t, (ball_frame("bob-orange", *bob), poly_frame("block-blue", *block)), decor_below=(rod, mount)
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("bob-orange", "orange"), ("block-blue", "blue")), frames, w.events)


# ---------------------------------------------------------------------------------------------- fluids


def _fill_particles(
    w: PhysicsWorld,
    xs: tuple[float, float],
    ys: tuple[float, float],
    radius: float,
    fits: Callable[[float, float], bool],
    p: Params,
    limit: int,
) -> list[pymunk.Body]:
    bodies: list[pymunk.Body] = []
    gap = radius * 2.05
    y = ys[0] + radius
    row = 0
    while y < ys[1] - radius and len(bodies) < limit:
        x = xs[0] + radius + (gap / 2 if row % 2 else 0.0)
        while x < xs[1] - radius and len(bodies) < limit:
            if fits(x, y):
                body = pymunk.Body()
                body.position = (x + p.pick(-0.002, 0.002, 0.001), y)
                shape = pymunk.Circle(body, radius)
                shape.mass, shape.friction, shape.elasticity = 0.002, 0.05, 0.1
                w.space.add(body, shape)
                w.labels[shape] = "liquid"
                bodies.append(body)
            x += gap
        y += gap * 0.9
        row += 1
    return bodies


def granular_pour(p: Params, times: Sequence[float]) -> SimResult:
    """Blue beads held in a funnel by a gate; the gate opens and they pour into a glass."""
    w = PhysicsWorld()
    w.space.iterations = 12
    _table(w, elasticity=0.2)
    cx = p.pick(0.98, 1.02, 0.0)
    half_open = 0.05
    w.add_static_segment(
        "funnel", (cx - 0.32, 0.92), (cx - half_open, 0.64), 0.012, MUTED["steel"], friction=0.05
    )
    w.add_static_segment(
        "funnel", (cx + 0.32, 0.92), (cx + half_open, 0.64), 0.012, MUTED["steel"], friction=0.05
    )
    for side in (-1, 1):
        w.add_static_segment(
            "glass", (cx + side * 0.2, TABLE_Y), (cx + side * 0.2, 0.42), 0.012, MUTED["glass"]
        )
    gate = pymunk.Segment(w.space.static_body, (cx - 0.08, 0.635), (cx + 0.08, 0.635), 0.006)
    w.space.add(gate)
    radius = 0.013

    def inside_funnel(x: float, y: float) -> bool:
        half = half_open + (y - 0.64) / 0.28 * (0.32 - half_open) - 0.02
        return abs(x - cx) < half and y > 0.66

    beads = _fill_particles(w, (cx - 0.3, cx + 0.3), (0.655, 0.9), radius, inside_funnel, p, 220)
    release = RELEASE_T + p.pick(0, 0, 0.01)
    opened: list[bool] = []

    def control(t: float) -> None:
        if t >= release and not opened:
            w.space.remove(gate)
            opened.append(True)

    def snapshot(t: float) -> WorldFrame:
        decor = () if t >= release else (Line((cx - 0.08, 0.635), (cx + 0.08, 0.635), 0.012, MUTED["rod"]),)
        return WorldFrame(t, (particles_frame("liquid-blue", beads, radius),), decor_above=decor)

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("liquid-blue", "blue")), frames, w.events)


def block_splash(p: Params, times: Sequence[float]) -> SimResult:
    """A red block dropped into a tank of cyan liquid (simulated as many small particles)."""
    w = PhysicsWorld()
    w.space.iterations = 12
    _table(w, elasticity=0.2)
    left, right = 0.55, 1.45
    for x in (left, right):
        w.add_static_segment("tank", (x, TABLE_Y), (x, 0.54), 0.014, MUTED["glass"])
    radius = 0.014
    liquid = _fill_particles(
        w, (left + 0.01, right - 0.01), (TABLE_Y, 0.34), radius, lambda x, y: True, p, 320
    )
    bw, bh = 0.15, 0.1
    bx, by = p.pick(0.92, 1.05, 0.01), p.pick(0.72, 0.78, 0.01)
    block = w.add_box(
        "block-red",
        bx,
        by,
        bw,
        bh,
        0.4,
        angle=p.pick(-0.05, 0.05, 0.02),
        friction=0.3,
        elasticity=0.1,
        held=True,
    )
    release = RELEASE_T + p.pick(0, 0, 0.01)

    def control(t: float) -> None:
        if t >= release:
            w.release(block[0])

    def snapshot(t: float) -> WorldFrame:
        decor = (_grabber(bx, by + bh / 2),) if t < release else ()
        objs = (particles_frame("liquid-cyan", liquid, radius), poly_frame("block-red", *block))
        return WorldFrame(t, objs, decor_above=decor)

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("liquid-cyan", "cyan"), ("block-red", "red")), frames, w.events)


# ---------------------------------------------------------------------------------------------- optics


def swinging_lamp_shadow(p: Params, times: Sequence[float]) -> SimResult:
    """A lamp swings on a cord in front of a wall; a hanging ball's shadow on the wall moves the other way.

    The shadow is computed geometrically: the lamp is a point light ``Z_LAMP`` in front of the wall, the ball
    ``Z_BALL`` in front of it, and each point of the ball projects from the lamp onto the wall plane.
    """
    z_lamp, z_ball = 0.6, 0.3
    w = PhysicsWorld()
    _table(w)
    pivot = (p.pick(0.95, 1.05, 0.0), 0.97)
    cord = 0.3
    theta = math.radians(p.pick(35, 45, 1.5))
    lamp_r = 0.04
    lamp = w.add_ball(
        "lamp-yellow",
        pivot[0] + cord * math.sin(theta),
        pivot[1] - cord * math.cos(theta),
        lamp_r,
        0.2,
        held=True,
    )
    # The lamp and the ball hang at different depths: they never collide.
    lamp[1].filter = pymunk.ShapeFilter(group=1)
    ball_c = (pivot[0] + p.pick(-0.03, 0.03, 0.005), 0.5)
    ball_r = 0.065
    w.statics.append(
        StaticItem(
            "ball-string",
            Polygon(box_points(ball_c[0], (0.5 + WORLD_H) / 2, 0.008, WORLD_H - 0.5)),
            MUTED["rod"],
            surface=False,
        )
    )
    release = RELEASE_T + p.pick(0, 0, 0.01)
    joined: list[pymunk.Constraint] = []

    def control(t: float) -> None:
        if t >= release and not joined:
            w.release(lamp[0])
            joint = pymunk.PinJoint(w.space.static_body, lamp[0], pivot, (0, 0))
            w.space.add(joint)
            joined.append(joint)

    def snapshot(t: float) -> WorldFrame:
        lx, ly = float(lamp[0].position.x), float(lamp[0].position.y)
        scale = z_lamp / (z_lamp - z_ball)
        sx, sy = lx + (ball_c[0] - lx) * scale, ly + (ball_c[1] - ly) * scale
        shadow = Shadow(Circle((sx, sy), ball_r * scale), factor=0.55)
        still_ball = ObjectFrame("ball-blue", Circle(ball_c, ball_r), ball_c, (0.0, 0.0))
        cord_line = Line(pivot, (lx, ly), 0.008, MUTED["rod"])
        glow = Glow((lx, ly), lamp_r * 1.9, (250, 245, 215))
        return WorldFrame(
            t, (still_ball, ball_frame("lamp-yellow", *lamp)), decor_below=(shadow, cord_line, glow)
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("lamp-yellow", "yellow"), ("ball-blue", "blue")), frames, w.events)


def mirror_table_bounce(p: Params, times: Sequence[float]) -> SimResult:
    """A ball rolls off a shelf and bounces on a glossy black table that mirrors it.

    The reflection is the exact planar-mirror image (the ray-traced result for a flat mirror): each point
    ``(x, y)`` above the table top ``y0`` appears at ``(x, 2*y0 - y)``, seen through the mirror's tint.
    """
    top = 0.3
    w = PhysicsWorld()
    w.add_static_box(
        "mirror-table",
        WORLD_W / 2,
        top / 2,
        WORLD_W + 0.4,
        top,
        MUTED["mirror"],
        friction=0.7,
        elasticity=0.85,
    )
    w.add_static_box("wall", 1.9, top + 0.2, 0.08, 0.4, MUTED["wood"], elasticity=0.8)
    shelf_top = top + p.pick(0.24, 0.26, 0.0)
    w.add_static_box("shelf", 0.43, (top + shelf_top) / 2, 0.3, shelf_top - top, MUTED["wood"])
    clip = Polygon(box_points(WORLD_W / 2, top / 2, WORLD_W + 0.4, top))
    shelf_reflection = box_points(0.43, top - (shelf_top - top) / 2, 0.3, shelf_top - top)
    w.statics.append(StaticItem("shelf-reflection", Polygon(shelf_reflection), (80, 72, 64), surface=False))
    r = 0.05
    ball_x = 0.36
    ball = w.add_ball("ball-red", ball_x, shelf_top + r, r, 0.2, friction=0.8, elasticity=0.9, held=True)
    t_hit = p.pick(2.5, 2.65, 0.02)
    speed = p.pick(0.55, 0.65, 0.02)

    def control(t: float) -> None:
        if t >= t_hit and ball[0].body_type != pymunk.Body.DYNAMIC:
            _launch(ball[0], speed, r)

    def snapshot(t: float) -> WorldFrame:
        frame = ball_frame("ball-red", *ball)
        x, y = frame.centroid
        mirrored = Reflection(Circle((x, 2 * top - y), r), PALETTE["red"], 0.4, clip)
        return WorldFrame(
            t, (frame,), decor_below=(mirrored,), decor_above=(_cue(ball_x - r, shelf_top + r, t, t_hit),)
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("ball-red", "red")), frames, w.events)


# ---------------------------------------------------------------------------------------------- thermo


def ice_melting(p: Params, times: Sequence[float]) -> SimResult:
    """An ice block melts on a hot plate that heats up; the melt water runs off as small particles.

    Heat model (explicit Euler at the physics rate): the plate heats towards ``t_max`` with time constant
    ``tau`` (Newton's law); the ice loses height at a rate proportional to the plate temperature above 0 °C
    (conduction through the contact), and width at a small constant rate (warm room air). Melted area is
    conserved: every particle-sized amount of it is released as a water particle at the ice's foot.
    """
    w = PhysicsWorld()
    w.space.iterations = 12
    _table(w, elasticity=0.1)
    plate_top = TABLE_Y + 0.04
    w.add_static_box(
        "hot-plate", 1.0, TABLE_Y + 0.02, 0.9, 0.04, MUTED["heater"], friction=0.05, elasticity=0.1
    )
    t_max, tau, t_on = p.pick(210, 230, 5), 4.0, 1.5
    k_plate, k_air, t_air = 1.7e-4, 0.5e-4, 20.0
    cx = p.pick(0.95, 1.05, 0.01)
    size = p.pick(0.2, 0.22, 0.004)
    state = {"h": size, "w": size, "T": t_air, "dh": 0.0, "released": 0.0}
    ice_body = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
    ice_body.position = (cx, plate_top)
    ice_shape = pymunk.Poly(ice_body, [(-size / 2, 0), (size / 2, 0), (size / 2, size), (-size / 2, size)])
    ice_shape.friction = 0.05
    w.space.add(ice_body, ice_shape)
    w.labels[ice_shape] = "ice-cyan"
    radius = 0.016
    drop_area = math.pi * radius**2 * 1.1  # one particle's share of water, with some packing space
    water: list[pymunk.Body] = []
    rng = np.random.default_rng([p.take, int(size * 1e6)])

    def release_drop(side: int) -> None:
        body = pymunk.Body()
        body.position = (cx + side * (state["w"] / 2 + radius + 0.002), plate_top + radius + 0.001)
        body.velocity = (side * float(rng.uniform(0.05, 0.1)), 0.0)
        shape = pymunk.Circle(body, radius)
        shape.mass, shape.friction, shape.elasticity = 0.002, 0.15, 0.1
        w.space.add(body, shape)
        w.labels[shape] = "water-blue"
        water.append(body)

    for side in (-1, 1, -1, 1):  # a little melt water already lies at the foot of the ice
        release_drop(side)

    def control(t: float) -> None:
        dt = 1.0 / 240
        target = t_max if t >= t_on else t_air
        state["T"] += (target - state["T"]) / tau * dt
        dh = -(k_plate * max(state["T"], 0.0) + k_air * t_air)
        old_area = state["h"] * state["w"]
        state["dh"] = dh if state["h"] > 0.02 else 0.0
        state["h"] = max(state["h"] + dh * dt, 0.02)
        state["w"] = max(state["w"] - 2 * k_air * t_air * dt, 0.04)
        state["released"] += old_area - state["h"] * state["w"]
        hw, h = state["w"] / 2, state["h"]
        ice_shape.unsafe_set_vertices([(-hw, 0), (hw, 0), (hw, h), (-hw, h)])
        while state["released"] >= drop_area:
            state["released"] -= drop_area
            release_drop(1 if len(water) % 2 else -1)

    def snapshot(t: float) -> WorldFrame:
        h, wd = state["h"], state["w"]
        ice = ObjectFrame(
            "ice-cyan",
            Polygon(box_points(cx, plate_top + h / 2, wd, h)),
            (cx, plate_top + h / 2),
            (0.0, state["dh"] / 2),
        )
        heat = min(max((state["T"] - t_air) / (t_max - t_air), 0.0), 1.0)
        # The plate brightens as it heats (a "shadow" with factor > 1 lightens): the visible heat cue.
        plate = Shadow(
            Polygon(box_points(1.0, TABLE_Y + 0.02, 0.9, 0.04)), factor=1.0 + 0.35 * heat, soft=False
        )
        return WorldFrame(t, (ice, particles_frame("water-blue", water, radius)), decor_below=(plate,))

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("water-blue", "blue"), ("ice-cyan", "cyan")), frames, w.events)


def balloon_heating(p: Params, times: Sequence[float]) -> SimResult:
    """A sealed balloon on a heater expands (Charles's law) and lifts off once buoyancy beats its weight.

    The air inside heats by Newton's law towards the heater temperature; its volume grows as ``V0 T / T0``
    (constant pressure, sealed: the air's mass is constant); buoyancy is ``rho_air g V``; quadratic drag
    ``0.5 rho C_d A v|v|`` limits the rise; a shelf stops it.
    """
    rho, t0, cd = 1.2, 293.0, 0.5
    w = PhysicsWorld()
    _table(w)
    w.add_static_box("heater", 1.0, TABLE_Y + 0.04, 0.3, 0.08, MUTED["heater"])
    w.add_static_box("shelf", 1.0, 0.95, 0.8, 0.03, MUTED["wood"])
    r0 = p.pick(0.11, 0.12, 0.002)
    v0 = 4 / 3 * math.pi * r0**3
    lift_t = 396.0  # temperature at which it lifts off (sets the skin's mass)
    m_skin = rho * v0 * (lift_t / t0 - 1)
    t_heater, tau = p.pick(440, 460, 4), 3.0
    body, shape = w.add_ball(
        "balloon-red",
        p.pick(0.97, 1.03, 0.005),
        TABLE_Y + 0.08 + r0 + 0.001,
        r0,
        m_skin + rho * v0,
        friction=0.6,
        elasticity=0.3,
    )
    state = {"T": t0}

    def control(t: float) -> None:
        dt = 1.0 / 240
        if t >= 0:
            state["T"] += (t_heater - state["T"]) / tau * dt
        volume = v0 * state["T"] / t0
        radius = (3 * volume / (4 * math.pi)) ** (1 / 3)
        shape.unsafe_set_radius(radius)
        vx, vy = body.velocity
        speed = math.hypot(vx, vy)
        drag = 0.5 * rho * cd * math.pi * radius**2 * speed
        body.apply_force_at_world_point((-drag * vx, rho * GRAVITY * volume - drag * vy), body.position)

    def snapshot(t: float) -> WorldFrame:
        return WorldFrame(t, (ball_frame("balloon-red", body, shape),))

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("balloon-red", "red")), frames, w.events)


# ---------------------------------------------------------------------------------------------- magnetism


def _magnet(w: PhysicsWorld, x: float, north_left: bool) -> tuple[float, float]:
    mw, mh = 0.12, 0.12
    w.add_static_box("magnet", x, TABLE_Y + mh / 2, mw, mh, MUTED["magnet_n"], elasticity=0.0, drawn=False)
    left, right = (
        (MUTED["magnet_n"], MUTED["magnet_s"]) if north_left else (MUTED["magnet_s"], MUTED["magnet_n"])
    )
    w.statics.append(
        StaticItem("magnet", Polygon(box_points(x - mw / 4, TABLE_Y + mh / 2, mw / 2, mh)), left)
    )
    w.statics.append(
        StaticItem("magnet", Polygon(box_points(x + mw / 4, TABLE_Y + mh / 2, mw / 2, mh)), right)
    )
    return (x, TABLE_Y + mh / 2)


def magnet_attract(p: Params, times: Sequence[float]) -> SimResult:
    """A steel ball let go on a table rolls faster and faster towards a magnet and sticks to it.

    Applied force ``k / (d^2 + eps^2)`` towards the magnet's centre (a softened point-pole model).
    """
    k, eps = 0.027, 0.03
    w = PhysicsWorld()
    _table(w)
    magnet = _magnet(w, p.pick(1.5, 1.58, 0.0), north_left=True)
    r = 0.05
    bx = p.pick(0.78, 0.86, 0.01)
    body, shape = w.add_ball("ball-green", bx, TABLE_Y + r, r, 0.1, friction=0.8, elasticity=0.0, held=True)
    release = RELEASE_T + p.pick(0, 0, 0.01)

    def control(t: float) -> None:
        if t >= release:
            w.release(body)
            d = np.subtract(magnet, (body.position.x, body.position.y))
            dist = float(np.hypot(*d))
            force = k / (dist**2 + eps**2) * d / max(dist, 1e-6)
            body.apply_force_at_world_point((float(force[0]), float(force[1])), body.position)

    def snapshot(t: float) -> WorldFrame:
        decor = (_grabber(bx, TABLE_Y + 2 * r),) if t < release else ()
        return WorldFrame(t, (ball_frame("ball-green", body, shape),), decor_above=decor)

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("ball-green", "green")), frames, w.events)


def magnet_repel(p: Params, times: Sequence[float]) -> SimResult:
    """A magnetic puck slides on a frictionless track towards a like pole, stops short and is pushed back.

    Applied force ``-k / (d^2 + eps^2)`` along the track, ``d`` the centre distance.
    """
    k, eps = 0.004, 0.03
    w = PhysicsWorld()
    _table(w, friction=0.0)
    magnet = _magnet(w, 1.61, north_left=False)
    w.add_static_box("bumper", 0.2, TABLE_Y + 0.06, 0.05, 0.12, MUTED["wood"], elasticity=0.9)
    pw, ph = 0.1, 0.05
    px = 0.45
    body, shape = w.add_box(
        "puck-magenta", px, TABLE_Y + ph / 2, pw, ph, 0.1, friction=0.0, elasticity=0.9, held=True
    )
    t_hit = p.pick(2.3, 2.45, 0.02)
    speed = p.pick(0.55, 0.62, 0.02)

    def control(t: float) -> None:
        if t >= t_hit and body.body_type != pymunk.Body.DYNAMIC:
            _launch(body, speed, None)
        if body.body_type == pymunk.Body.DYNAMIC:
            d = magnet[0] - body.position.x
            body.apply_force_at_world_point(
                (-k / (d * d + eps * eps) * math.copysign(1.0, d), 0.0), body.position
            )

    def snapshot(t: float) -> WorldFrame:
        return WorldFrame(
            t,
            (poly_frame("puck-magenta", body, shape),),
            decor_above=(_cue(px - pw / 2, TABLE_Y + ph / 2, t, t_hit),),
        )

    frames = w.run(times, control, snapshot)
    return SimResult(w.statics, _colours(("puck-magenta", "magenta")), frames, w.events)


# ---------------------------------------------------------------------------------------------- registry

_SPECS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "synthetic-ball-bounce",
        "Solid Mechanics",
        "A red rubber ball and a blue clay-like ball hang side by side from two grabber arms above a wooden "
        "table in front of a plain wall. The grabbers let go of both balls at the same time. " + STATIC_SHOT,
        ball_bounce,
        None,
    ),
    ScenarioSpec(
        "synthetic-two-ball-collision",
        "Solid Mechanics",
        "A red ball and a blue ball rest on a wooden table with a wooden block standing at the right edge. A "
        "grey cue stick pushes the red ball to the right towards the blue ball. " + STATIC_SHOT,
        two_ball_collision,
        ("ball-red", "ball-blue"),
    ),
    ScenarioSpec(
        "synthetic-domino-chain",
        "Solid Mechanics",
        "Six thin dominoes in orange, yellow, green, cyan, blue and purple stand in a row on a wooden table. A "
        "grey cue stick pushes a red ball to the right towards the first domino. " + STATIC_SHOT,
        domino_chain,
        ("ball-red", "domino-1"),
    ),
    ScenarioSpec(
        "synthetic-ramp-roll-slide",
        "Solid Mechanics",
        "A grey ramp stands on a wooden table sloping down to the right. Two grabber arms hold a blue block near "
        "the top of the ramp and a red ball further down the slope, and let go of both at the same time. "
        + STATIC_SHOT,
        ramp_roll_slide,
        None,
    ),
    ScenarioSpec(
        "synthetic-pendulum-strike",
        "Solid Mechanics",
        "An orange pendulum bob on a thin grey rod is held up to the left of its pivot above a wooden table. A "
        "blue block rests on the table just right of the point below the pivot. The bob is let go. "
        + STATIC_SHOT,
        pendulum_strike,
        ("bob-orange", "block-blue"),
    ),
    ScenarioSpec(
        "synthetic-granular-pour",
        "Fluid Dynamics",
        "A grey funnel above an empty glass on a wooden table is filled with small blue beads, held in by a "
        "grey gate at the funnel's narrow end. The gate slides away. " + STATIC_SHOT,
        granular_pour,
        None,
    ),
    ScenarioSpec(
        "synthetic-block-splash",
        "Fluid Dynamics",
        "A clear tank on a wooden table is two-thirds full of a cyan liquid. A grabber arm holds a red block "
        "above the middle of the tank and lets go of it. " + STATIC_SHOT,
        block_splash,
        None,
    ),
    ScenarioSpec(
        "synthetic-swinging-lamp-shadow",
        "Optics",
        "A small yellow lamp hangs on a cord in front of a plain wall, held up to the right, and a blue ball "
        "hangs on a string between the lamp and the wall, casting a shadow on the wall. The lamp is let go and "
        "swings. " + STATIC_SHOT,
        swinging_lamp_shadow,
        None,
    ),
    ScenarioSpec(
        "synthetic-mirror-table-bounce",
        "Optics",
        "A glossy black table top reflects the scene like a mirror. A red ball rests on a wooden shelf standing "
        "on the left of the table, and a grey cue stick pushes it to the right over the shelf's edge. "
        + STATIC_SHOT,
        mirror_table_bounce,
        None,
    ),
    ScenarioSpec(
        "synthetic-ice-melting",
        "Thermodynamics",
        "A cyan block of ice sits in the middle of a dark hot plate on a wooden table, with a few drops of blue "
        "melt water at its foot. The hot plate is switched on and heats up. " + STATIC_SHOT,
        ice_melting,
        None,
    ),
    ScenarioSpec(
        "synthetic-balloon-heating",
        "Thermodynamics",
        "A sealed red balloon rests on a dark electric heater on a wooden table, below a wooden shelf. The heater "
        "is switched on and warms the air inside the balloon. " + STATIC_SHOT,
        balloon_heating,
        None,
    ),
    ScenarioSpec(
        "synthetic-magnet-attract",
        "Magnetism",
        "A strong magnet painted in muted red and blue sits on the right of a wooden table. A grabber arm holds "
        "a green steel ball on the table some distance to the left of the magnet and lets go of it. "
        + STATIC_SHOT,
        magnet_attract,
        # Not gated by the ball-magnet contact: the accelerating approach is the physics under test (the
        # contact only ends it), so the whole clip is judged.
        None,
    ),
    ScenarioSpec(
        "synthetic-magnet-repel",
        "Magnetism",
        "A magenta magnetic puck sits on a smooth track with a wooden bumper at the left end and a strong magnet "
        "at the right end facing the puck with the same pole. A grey cue stick pushes the puck to the right "
        "towards the magnet. " + STATIC_SHOT,
        magnet_repel,
        None,
    ),
)

#: Scenario slug -> spec, in suite order (solid mechanics first, as in the real benchmark).
SCENARIOS: dict[str, ScenarioSpec] = {spec.name: spec for spec in _SPECS}


__all__ = ["RELEASE_T", "SCENARIOS", "Params", "ScenarioSpec"]
