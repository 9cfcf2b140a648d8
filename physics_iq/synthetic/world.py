"""World-space description of a simulated scene: shapes, frames, events, and a pymunk stepping helper.

Units are metres, seconds and kilograms; ``y`` points up. Cameras (in :mod:`physics_iq.synthetic.render`)
map this world to pixels. Nothing here knows about pixels or files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pymunk

#: Physics step. 240 Hz divides every benchmark frame rate (8, 16, 24, 30), so every frame falls on a step.
SIM_HZ = 240
#: Seconds simulated before the recorded clip starts, so that piles of particles settle off camera.
PREROLL_S = 1.0
#: Scene size in metres (16:9); the centre camera sees all of it.
WORLD_W, WORLD_H = 2.0, 1.125
#: Height of the table top every scene stands on.
TABLE_Y = 0.12
GRAVITY = 9.81

Colour = tuple[int, int, int]

#: Saturated, well-separated colours for moving objects (RGB). Each object id uses exactly one.
PALETTE: dict[str, Colour] = {
    "red": (230, 40, 40),
    "orange": (250, 140, 20),
    "yellow": (240, 215, 30),
    "green": (40, 190, 60),
    "cyan": (30, 205, 215),
    "blue": (40, 80, 235),
    "purple": (140, 50, 225),
    "magenta": (230, 45, 180),
}

#: Muted colours for static geometry (low saturation, distinct from :data:`PALETTE`).
MUTED: dict[str, Colour] = {
    # Dark enough that every palette colour differs from it by > 25 grey levels (motion masks work on luma).
    "wall": (62, 60, 56),
    "rod": (150, 146, 140),
    "steel": (125, 128, 132),
    "wood": (128, 110, 92),
    "glass": (150, 160, 165),
    "heater": (105, 80, 76),
    "magnet_n": (120, 88, 88),
    "magnet_s": (88, 94, 118),
    "mirror": (44, 46, 52),
}


@dataclass(frozen=True)
class Circle:
    """A disc (world coordinates)."""

    centre: tuple[float, float]
    radius: float


@dataclass(frozen=True)
class Polygon:
    """A closed polygon (world coordinates)."""

    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Particles:
    """Many equal discs drawn as one object (a liquid or a granular material)."""

    centres: np.ndarray  # (N, 2)
    radius: float


Shape = Circle | Polygon | Particles


@dataclass(frozen=True)
class ObjectFrame:
    """A tracked moving object at one instant: what is drawn, where its centre is and how fast it moves."""

    id: str
    shape: Shape
    centroid: tuple[float, float]
    velocity: tuple[float, float]


@dataclass(frozen=True)
class Line:
    """An untracked moving line drawn in a muted colour (a pendulum rod, a grabber arm)."""

    a: tuple[float, float]
    b: tuple[float, float]
    width: float
    colour: Colour


@dataclass(frozen=True)
class Shadow:
    """A region of the background darkened by ``factor`` (a cast shadow); ``soft`` blurs its edge."""

    shape: Shape
    factor: float
    soft: bool = True


@dataclass(frozen=True)
class Reflection:
    """A shape seen in a mirror: drawn blended with the mirror colour and clipped to ``clip``."""

    shape: Shape
    colour: Colour
    alpha: float
    clip: Polygon


@dataclass(frozen=True)
class Glow:
    """A soft pale halo around a light source."""

    centre: tuple[float, float]
    radius: float
    colour: Colour


Decor = Line | Shadow | Reflection | Glow


@dataclass(frozen=True)
class WorldFrame:
    """Everything that moves at time ``time`` (seconds since the clip's first frame)."""

    time: float
    objects: tuple[ObjectFrame, ...]
    decor_below: tuple[Decor, ...] = ()
    decor_above: tuple[Decor, ...] = ()


@dataclass(frozen=True)
class StaticItem:
    """Fixed scene geometry drawn into the background in a muted colour.

    Attributes:
        name: Short name used in the ground-truth state (``floor``, ``ramp``...).
        shape: Its outline in world coordinates.
        colour: A muted colour.
        surface: Whether objects touch it (reported as a static surface in the state files).
    """

    name: str
    shape: Polygon | Circle
    colour: Colour
    surface: bool = True


@dataclass(frozen=True)
class Event:
    """Two named things started touching at ``time`` (seconds since the clip's first frame)."""

    time: float
    kind: str
    objects: tuple[str, str]


@dataclass
class SimResult:
    """A simulated take, sampled at the clip's frame times.

    Attributes:
        statics: Fixed geometry.
        colours: Object id -> its colour (one per id).
        frames: One :class:`WorldFrame` per sampled time.
        events: Contacts between named things, in time order.
    """

    statics: list[StaticItem]
    colours: dict[str, Colour]
    frames: list[WorldFrame] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def box_points(cx: float, cy: float, w: float, h: float) -> tuple[tuple[float, float], ...]:
    """Corners of an axis-aligned box centred at ``(cx, cy)``.

    >>> box_points(0, 0, 2, 1)
    ((-1.0, -0.5), (1.0, -0.5), (1.0, 0.5), (-1.0, 0.5))
    """
    return (
        (cx - w / 2, cy - h / 2),
        (cx + w / 2, cy - h / 2),
        (cx + w / 2, cy + h / 2),
        (cx - w / 2, cy + h / 2),
    )


class PhysicsWorld:
    """A pymunk space plus the bookkeeping every scenario needs: named shapes, contact events, sampling.

    Args:
        gravity: Downward acceleration in m/s^2.
    """

    def __init__(self, gravity: float = GRAVITY) -> None:
        self.space = pymunk.Space()
        self.space.gravity = (0.0, -gravity)
        self.space.iterations = 30
        # Chipmunk's default slop (0.1 units) is 10 cm in our metre units: far too loose for 5 cm balls.
        self.space.collision_slop = 5e-4
        self.labels: dict[pymunk.Shape, str] = {}
        self.events: list[Event] = []
        self.time = -PREROLL_S
        self.statics: list[StaticItem] = []
        self.space.on_collision(begin=self._on_begin)

    def _on_begin(self, arbiter: pymunk.Arbiter, space: pymunk.Space, data: object) -> None:
        a, b = arbiter.shapes
        la, lb = self.labels.get(a), self.labels.get(b)
        if la and lb and la != lb and self.time >= 0:
            self.events.append(Event(time=self.time, kind="contact", objects=(la, lb)))

    def add_static_box(
        self,
        name: str,
        cx: float,
        cy: float,
        w: float,
        h: float,
        colour: Colour,
        *,
        friction: float = 0.6,
        elasticity: float = 0.5,
        drawn: bool = True,
    ) -> pymunk.Poly:
        """A fixed box (table, wall, shelf) that collides and is drawn into the background."""
        points = box_points(cx, cy, w, h)
        return self.add_static_poly(
            name, points, colour, friction=friction, elasticity=elasticity, drawn=drawn
        )

    def add_static_poly(
        self,
        name: str,
        points: Sequence[tuple[float, float]],
        colour: Colour,
        *,
        friction: float = 0.6,
        elasticity: float = 0.5,
        drawn: bool = True,
    ) -> pymunk.Poly:
        """A fixed convex polygon that collides and is drawn into the background."""
        shape = pymunk.Poly(self.space.static_body, list(points))
        shape.friction, shape.elasticity = friction, elasticity
        self.space.add(shape)
        self.labels[shape] = name
        if drawn:
            self.statics.append(StaticItem(name, Polygon(tuple(points)), colour))
        return shape

    def add_static_segment(
        self,
        name: str,
        a: tuple[float, float],
        b: tuple[float, float],
        width: float,
        colour: Colour,
        *,
        friction: float = 0.5,
        elasticity: float = 0.3,
    ) -> pymunk.Segment:
        """A fixed thick segment (a container wall, a funnel side), drawn as a thin box."""
        shape = pymunk.Segment(self.space.static_body, a, b, width / 2)
        shape.friction, shape.elasticity = friction, elasticity
        self.space.add(shape)
        self.labels[shape] = name
        direction = np.subtract(b, a)
        normal = np.array([-direction[1], direction[0]]) / max(float(np.hypot(*direction)), 1e-9) * width / 2
        quad = (
            tuple(np.add(a, normal)),
            tuple(np.add(b, normal)),
            tuple(np.subtract(b, normal)),
            tuple(np.subtract(a, normal)),
        )
        self.statics.append(StaticItem(name, Polygon(tuple((float(x), float(y)) for x, y in quad)), colour))
        return shape

    def add_ball(
        self,
        name: str,
        x: float,
        y: float,
        radius: float,
        mass: float,
        *,
        friction: float = 0.8,
        elasticity: float = 0.5,
        held: bool = False,
    ) -> tuple[pymunk.Body, pymunk.Circle]:
        """A dynamic disc; ``held`` keeps it still (kinematic) until :meth:`release`."""
        body = pymunk.Body(body_type=pymunk.Body.KINEMATIC if held else pymunk.Body.DYNAMIC)
        body.position = (x, y)
        shape = pymunk.Circle(body, radius)
        shape.mass, shape.friction, shape.elasticity = mass, friction, elasticity
        self.space.add(body, shape)
        self.labels[shape] = name
        return body, shape

    def add_box(
        self,
        name: str,
        x: float,
        y: float,
        w: float,
        h: float,
        mass: float,
        *,
        angle: float = 0.0,
        friction: float = 0.6,
        elasticity: float = 0.2,
        held: bool = False,
    ) -> tuple[pymunk.Body, pymunk.Poly]:
        """A dynamic box centred at ``(x, y)``; ``held`` keeps it still until :meth:`release`."""
        body = pymunk.Body(body_type=pymunk.Body.KINEMATIC if held else pymunk.Body.DYNAMIC)
        body.position, body.angle = (x, y), angle
        shape = pymunk.Poly.create_box(body, (w, h), radius=0.0)
        shape.mass, shape.friction, shape.elasticity = mass, friction, elasticity
        self.space.add(body, shape)
        self.labels[shape] = name
        return body, shape

    @staticmethod
    def release(body: pymunk.Body) -> None:
        """Let a held body go (the grabber opens)."""
        if body.body_type != pymunk.Body.DYNAMIC:
            body.body_type = pymunk.Body.DYNAMIC

    def run(
        self,
        times: Sequence[float],
        control: Callable[[float], None],
        snapshot: Callable[[float], WorldFrame],
    ) -> list[WorldFrame]:
        """Step from the pre-roll to the last sample time and snapshot at every sample time.

        Args:
            times: Sample times in seconds (multiples of ``1/SIM_HZ``), increasing.
            control: Called before every step with the current time (releases, launches, applied forces).
            snapshot: Called at each sample time; returns what is drawn.
        """
        frames: list[WorldFrame] = []
        dt = 1.0 / SIM_HZ
        step = -round(PREROLL_S * SIM_HZ)
        sample_steps = [round(t * SIM_HZ) for t in times]
        for target in sample_steps:
            while step < target:
                self.time = step * dt
                control(self.time)
                self.space.step(dt)
                step += 1
            self.time = step * dt
            frames.append(snapshot(self.time))
        return frames


def ball_frame(name: str, body: pymunk.Body, shape: pymunk.Circle) -> ObjectFrame:
    """The :class:`ObjectFrame` of a disc body."""
    pos = (float(body.position.x), float(body.position.y))
    return ObjectFrame(
        name, Circle(pos, float(shape.radius)), pos, (float(body.velocity.x), float(body.velocity.y))
    )


def poly_frame(name: str, body: pymunk.Body, shape: pymunk.Poly) -> ObjectFrame:
    """The :class:`ObjectFrame` of a polygon body (its centre of mass is its area centroid)."""
    points = tuple((float(p.x), float(p.y)) for p in (body.local_to_world(v) for v in shape.get_vertices()))
    pos = (float(body.position.x), float(body.position.y))
    return ObjectFrame(name, Polygon(points), pos, (float(body.velocity.x), float(body.velocity.y)))


def particles_frame(name: str, bodies: Sequence[pymunk.Body], radius: float) -> ObjectFrame:
    """One object made of many particles: centroid and velocity are the particle means."""
    centres = np.array([(b.position.x, b.position.y) for b in bodies], dtype=np.float64)
    velocities = np.array([(b.velocity.x, b.velocity.y) for b in bodies], dtype=np.float64)
    mean, vel = centres.mean(axis=0), velocities.mean(axis=0)
    return ObjectFrame(
        name, Particles(centres, radius), (float(mean[0]), float(mean[1])), (float(vel[0]), float(vel[1]))
    )
