"""``physics-prior``: an offline stand-in for a video model — a 2D physics engine driven by the prompt.

NOT a neural model. It perceives the scene the way :mod:`physics_iq.motion` does for any footage (what moved
in the prefix, the things the prompt names, the floor and what stands on it), measures the moving objects'
velocity in the prefix (v2v), reads what the prompt says about each object in ordinary language, samples
whatever the prompt leaves open from broad priors using the request's seed, extrapolates with pymunk (discs for
round things, boxes for blocks, rolling and toppling included), and renders by compositing each object's
sprite onto the background (the prefix's temporal median, objects inpainted away).

What it reads from the prompt, per sentence, for the object(s) the sentence names ("the grey ball on the
left"; "it" continues the previous sentence's object), with the phrase tables of
:data:`physics_iq.vocabulary.MOTION_PHRASES`:

- falling: "is let go and falls", "drops", "falls straight down" (an object at rest in the air is released);
  "swings" when the prompt says it hangs from a rod, cord or string (:data:`physics_iq.vocabulary.TETHER_WORDS`):
  it swings about the far end of the straight thin line above it (:func:`physics_iq.motion.tether`);
- staying: "stays still", "does not move" (pinned); "stays where it is until something hits it" (at rest,
  free to be pushed);
- moving: "keeps rolling to the right", "slides to the left", "moves up" (direction; the speed is the
  prefix's in v2v, give or take the seed's jitter, exactly it with "at the same speed it had", else "slowly" /
  "quickly" as a share of the frame width per second);
- slowing: "at the same speed", "slows down gently", "slows down", "stops quickly", "comes to rest after about
  2 seconds";
- bouncing: "bounces a few times, each bounce lower", "bounces high", "bounces a little", "does not bounce";
  material words of the description ("rubber", "clay") when the prompt says nothing;
- falling speed: "falls slowly" / "falls quickly", relative to the scale the objects' sizes imply (a ball
  about 7 cm across, :data:`physics_iq.vocabulary.TYPICAL_SIZE_M`);
- forces: "is pulled towards the magnet on the right", "is pushed back by the magnet" (a softened
  inverse-square field from the nearest thing standing on that side), "gently" / "only as it comes close"
  or "strongly" for the lower or upper third of the prior on its strength; slowing said in the same sentence
  is the force's doing, not friction.

Numbers come through ``GenerationRequest.context["expectations"]`` when the caller has them (a real video
model ignores the context): a list of per-object dicts with the fields of the model-facing expectation
schema (``agent.schemas.ObjectExpectation``): ``x``, ``y`` (the object's position in the last prefix frame,
0..1 of the width and height), ``motion`` (``still``, ``moving``, ``falling``, ``rolling``, ``sliding``,
``swinging``, ``rising``), ``direction`` (``none``, ``left``, ``right``, ``up``, ``down``), ``speed``
(``none``, ``slow``, ``medium``, ``fast``), ``bounce`` (``none``, ``low``, ``high``), ``friction`` (``low``,
``medium``, ``high``), ``stops_at`` and ``lands_at`` (when it comes to rest, when it first hits the ground:
0..1 of the generated clip, or null).
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import pymunk

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, PromptStyle, check_output
from physics_iq import motion
from physics_iq.vocabulary import (
    SMOOTH_WORDS,
    SPEED_WORDS,
    TETHER_WORDS,
    direction,
    says,
    seconds,
    words,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pull:
    """A force field acting on one body: ``sign * strength * (d0^2 + soft^2) / (d^2 + soft^2)`` px/s² along the
    line to ``(x, y)`` (``sign`` +1 attracts, -1 repels), ``d0`` the start distance: ``strength`` is the
    acceleration at the start, growing like an inverse square (softened by ``soft``) as the body closes in."""

    x: float
    y: float
    strength: float
    sign: float
    start_distance: float
    soft: float


#: The collision category of the floor, the side walls and the static surface.
_WALLS = 0b10

#: Velocity decay rate (1/s) of a body inside a liquid: water brings a dropped block down to a sinking speed
#: within a fraction of a second.
LIQUID_DRAG = 6.0
#: Share of its weight a liquid lifts off a body that is not said to float: it sinks, slowly.
SINKING_BUOYANCY = 0.5
#: ... and off one that is said to float: it comes back up and settles at the surface.
FLOATING_BUOYANCY = 1.5


@dataclass(frozen=True)
class SimBody:
    """A body in image coordinates (x right, y down), px and px/s.

    A disc of ``radius``, or, when ``box`` is given, a ``(width, height)`` rectangle turned by ``angle``
    (radians). ``mirror_of`` marks the reflection of body ``mirror_of`` in the glossy ground surface: it is not
    simulated but drawn where the mirror puts it. ``restitution`` and ``damping`` (velocity fraction kept per
    second) override the world's for this body when set. ``pivot`` pins it to a fixed point by a rigid rod of
    its start distance (a pendulum, a lamp on a cord). ``on_support`` says it starts on something (the floor, a
    shelf, a step), so a ball moving along it rolls from the start. ``asleep`` keeps a resting body exactly where it is until
    a moving body comes into contact (things at rest do not settle or jitter by themselves). A body with a
    ``region`` ``(x0, y0, x1, y1)`` is a liquid: it stays where it is and nothing collides with it, but a body
    whose centre is in the region is slowed by drag (:data:`LIQUID_DRAG`) and lifted by its ``buoyancy``, a
    share of its weight (default :data:`SINKING_BUOYANCY`; above 1 it floats back up).
    """

    x: float
    y: float
    vx: float
    vy: float
    radius: float
    pinned: bool = False
    mirror_of: int | None = None
    pull: Pull | None = None
    box: tuple[float, float] | None = None
    angle: float = 0.0
    restitution: float | None = None
    damping: float | None = None
    pivot: tuple[float, float] | None = None
    asleep: bool = False
    on_support: bool = False
    friction: float | None = None
    region: tuple[float, float, float, float] | None = None
    buoyancy: float | None = None


@dataclass(frozen=True)
class WorldParams:
    """Physical parameters of the 2D world.

    Attributes:
        gravity: Downward acceleration, px/s².
        restitution: Fraction of normal speed kept in a bounce (0..1), for bodies without their own.
        damping: Fraction of velocity kept per second (1 = no drag), for bodies without their own.
        friction: Coulomb friction coefficient at contacts.
    """

    gravity: float = 300.0
    restitution: float = 0.6
    damping: float = 1.0
    friction: float = 0.5


def simulate(
    bodies: list[SimBody],
    params: WorldParams,
    *,
    floor_y: float,
    width: float,
    n_frames: int,
    fps: float,
    substeps: int = 16,
    surface: np.ndarray | None = None,
    with_angles: bool = False,
) -> np.ndarray:
    """Positions ``(n_frames, len(bodies), 2)`` (and angles as a third column when ``with_angles``) at times
    ``1/fps .. n_frames/fps`` after the start state.

    The world is a floor at ``floor_y``, walls at ``x = 0`` and ``x = width``, and, when given, the static
    ``surface`` polyline ``(N, 2)`` of points ``(x, y)`` (ramps, steps, posts standing on the floor). Mirror-image
    bodies follow their object, reflected in the horizontal line halfway between the two start positions.

    >>> pos = simulate([SimBody(10, 10, 0, 0, 3)], WorldParams(gravity=100), floor_y=1000, width=50,
    ...                n_frames=10, fps=10)
    >>> round(float(pos[-1, 0, 1] - 10), 0)  # free fall 1 s at 100 px/s²: 50 px
    50.0
    """
    space = pymunk.Space()
    space.gravity = (0.0, params.gravity)
    walls = [
        pymunk.Segment(space.static_body, (-1e4, floor_y), (1e4, floor_y), 0.0),
        pymunk.Segment(space.static_body, (0.0, -1e4), (0.0, floor_y), 0.0),
        pymunk.Segment(space.static_body, (width, -1e4), (width, floor_y), 0.0),
    ]
    if surface is not None:
        walls += [
            pymunk.Segment(space.static_body, tuple(a), tuple(b), 0.5)
            for a, b in itertools.pairwise(np.asarray(surface, float).tolist())
        ]
    for wall in walls:
        # pymunk multiplies the two shapes' elasticities; walls at 1 leave the body's value in charge.
        wall.elasticity, wall.friction = 1.0, 1.0
        wall.filter = pymunk.ShapeFilter(categories=_WALLS)
    space.add(*walls)
    handles: list[pymunk.Body | None] = []
    for b in bodies:
        if b.mirror_of is not None:
            handles.append(None)
            continue
        if b.region is not None:
            # A liquid: not a solid anything lands on; it only drags (below). Kept out of the space.
            liquid = pymunk.Body(body_type=pymunk.Body.STATIC)
            liquid.position = (b.x, b.y)
            handles.append(liquid)
            continue
        if b.box is not None:
            w, h = max(b.box[0], 1.0), max(b.box[1], 1.0)
            mass = max(1e-3, w * h / math.pi)
            moment = pymunk.moment_for_box(mass, (w, h))
        else:
            mass = max(1e-3, b.radius**2)
            moment = pymunk.moment_for_circle(mass, 0, max(b.radius, 0.5))
        if b.pinned:
            body = pymunk.Body(body_type=pymunk.Body.STATIC)
        elif b.asleep:
            body = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        else:
            body = pymunk.Body(mass, moment)
            body.velocity = (b.vx, b.vy)
            if b.box is None and (b.on_support or abs(b.y + b.radius - floor_y) <= 3):
                # A ball moving along the floor or a shelf is rolling (no slip: omega = v / r, y down);
                # starting it sliding would let friction eat 2/7 of its speed in the first frames.
                body.angular_velocity = b.vx / max(b.radius, 0.5)
            keep = params.damping if b.damping is None else b.damping
            if keep < 1.0:
                rate = math.log(max(keep, 1e-4))  # velocity *= keep every second

                def damped(
                    body: pymunk.Body, gravity: Any, damping: float, dt: float, rate: float = rate
                ) -> None:
                    pymunk.Body.update_velocity(body, gravity, math.exp(rate * dt), dt)

                body.velocity_func = damped
        body.position = (b.x, b.y)
        body.angle = b.angle
        if b.box is not None:
            shape: pymunk.Shape = pymunk.Poly.create_box(body, (max(b.box[0], 1.0), max(b.box[1], 1.0)))
        else:
            shape = pymunk.Circle(body, max(b.radius, 0.5))
        if b.pivot is not None:
            # A bob on a rod swings over the table it was set up above: a rod a pixel or two too long in the
            # estimate must not make it scrape the table and bounce back before it reaches what it strikes.
            shape.filter = pymunk.ShapeFilter(mask=pymunk.ShapeFilter.ALL_MASKS() ^ _WALLS)
        restitution = params.restitution if b.restitution is None else b.restitution
        shape.elasticity = min(max(restitution, 0.0), 0.99)
        shape.friction = params.friction if b.friction is None else b.friction
        space.add(body, shape)
        if b.pivot is not None and not b.pinned:
            space.add(pymunk.PinJoint(space.static_body, body, b.pivot, (0.0, 0.0)))
        handles.append(body)
    out = np.zeros((n_frames, len(bodies), 3 if with_angles else 2))
    dt = 1.0 / (fps * substeps)
    sleeping = {
        k
        for k, (handle, b) in enumerate(zip(handles, bodies, strict=True))
        if handle is not None and b.asleep
    }
    reach = [max(b.radius, 0.5 * math.hypot(*b.box)) if b.box is not None else b.radius for b in bodies]
    liquids = [b.region for b in bodies if b.region is not None]
    swimmers = [
        (handle, SINKING_BUOYANCY if b.buoyancy is None else b.buoyancy)
        for handle, b in zip(handles, bodies, strict=True)
        if liquids and handle is not None and b.region is None and not b.pinned
    ]
    pulled: list[tuple[pymunk.Body, Pull]] = []
    for handle, b in zip(handles, bodies, strict=True):
        if handle is not None and b.pull is not None and handle.body_type == pymunk.Body.DYNAMIC:
            pulled.append((handle, b.pull))
    for t in range(n_frames):
        for _ in range(substeps):
            for k in list(sleeping):
                sleeper = handles[k]
                assert sleeper is not None  # only simulated bodies sleep
                # Woken by contact: a moving body within reach of it.
                near = any(
                    other is not None
                    and j not in sleeping
                    and other.body_type == pymunk.Body.DYNAMIC
                    and (other.position - sleeper.position).length < reach[j] + reach[k] + 2.0
                    for j, other in enumerate(handles)
                )
                if near:
                    b = bodies[k]
                    sleeper.body_type = pymunk.Body.DYNAMIC
                    for shape in sleeper.shapes:
                        shape.mass = max(1e-3, (b.box[0] * b.box[1] / math.pi) if b.box else b.radius**2)
                    sleeping.discard(k)
            for body, pull in pulled:
                dx, dy = pull.x - body.position.x, pull.y - body.position.y
                distance = max(math.hypot(dx, dy), 1e-6)
                accel = pull.sign * pull.strength * (pull.start_distance**2 + pull.soft**2)
                accel /= distance**2 + pull.soft**2
                # pymunk clears applied forces after every step, so the field is applied before each one.
                body.apply_force_at_world_point(
                    (body.mass * accel * dx / distance, body.mass * accel * dy / distance), body.position
                )
            for body, lift in swimmers:
                x, y = body.position
                if body.body_type == pymunk.Body.DYNAMIC and any(
                    x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in liquids
                ):
                    body.velocity = body.velocity * math.exp(-LIQUID_DRAG * dt)
                    body.apply_force_at_world_point((0.0, -lift * body.mass * params.gravity), body.position)
            space.step(dt)
        for k, handle in enumerate(handles):
            if handle is not None:
                out[t, k, :2] = (handle.position.x, handle.position.y)
                if with_angles:
                    out[t, k, 2] = handle.angle
        for k, b in enumerate(bodies):
            if b.mirror_of is not None:
                source = bodies[b.mirror_of]
                line = (source.y + b.y) / 2
                x, y = out[t, b.mirror_of, :2]
                out[t, k, :2] = (x + b.x - source.x, 2 * line - y)
    return out


# ---------------------------------------------------------------------------------------------- reading prompts


@dataclass
class Said:
    """What a prompt says about one object (``None``: not said).

    Attributes:
        falls: It is let go / falls.
        still: It stays still (pinned).
        free: It rests until something hits it (at rest, not pinned).
        moves: It moves (with ``heading`` when a direction is given).
        heading: ``right``, ``left``, ``up`` or ``down``.
        speed: Frame widths per second from a speed word ("slowly", "quickly").
        keep: Velocity fraction kept per second (slowing down).
        bounce: Restitution from bounce words.
        fall_scale: Multiplier on the expected gravity ("falls slowly" < 1).
        pull: ``(+1 attracted / -1 pushed back, side)``, side ``right``/``left``/``""``.
        force: How hard the pull or push acts: ``"gentle"``, ``"strong"`` or ``None`` (not said).
        floats: It floats (in a liquid it comes back up to the surface rather than sinking).
    """

    falls: bool = False
    swings: bool = False
    same_speed: bool = False
    still: bool = False
    free: bool = False
    moves: bool = False
    heading: str | None = None
    speed: float | None = None
    keep: float | None = None
    bounce: float | None = None
    fall_scale: float | None = None
    pull: tuple[float, str] | None = None
    force: str | None = None
    floats: bool = False


@dataclass
class PromptPhysics:
    """What a prompt pins down: per object (by index into the perceived objects) and for every object."""

    objects: dict[int, Said] = field(default_factory=dict)
    everyone: Said = field(default_factory=Said)


_SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n+")
_SIDE = re.compile(r"\b(?:on|at|to|towards?) the (right|left)\b")
_PRONOUN = re.compile(r"^\s*(?:it|its|then it|and it|this|the object)\b", re.I)
_EVERYONE = re.compile(r"\b(?:everything|every object|all (?:the )?(?:objects|balls|blocks)|both)\b", re.I)


def _said_in(sentence: str, said: Said) -> None:
    """Fill ``said`` from one sentence (leaving what it does not say alone)."""
    if says(sentence, "still") and not says(sentence, "until_hit"):
        said.still = True
    if says(sentence, "until_hit"):
        said.free = True
    if says(sentence, "falls") or says(sentence, "pours"):
        said.falls = True
    if says(sentence, "swings"):
        said.swings = True
    if says(sentence, "same_speed"):
        said.same_speed = True
    if says(sentence, "moves") or says(sentence, "swings") or says(sentence, "rises"):
        said.moves = True
    heading = direction(sentence)
    pulled, pushed = says(sentence, "pulled"), says(sentence, "pushed_back")
    # "... and is pushed back to the left" says where the force sends it later, not which way it goes now (the
    # field turns it round by itself).
    if heading is not None and (said.moves or said.falls) and not (pulled or pushed):
        said.heading = heading
    if says(sentence, "rises"):
        said.heading = "up"
    if says(sentence, "floats"):
        said.floats = True
    for word, share in SPEED_WORDS.items():
        if re.search(rf"\b{word}\b", sentence.lower()) and said.moves:
            said.speed = share
    if pulled or pushed:
        pass  # "slows down before the magnet and is pushed back": the force slows it, not friction
    elif says(sentence, "keeps_speed"):
        said.keep = 1.0
    elif says(sentence, "slows_gently"):
        said.keep = 0.8
    elif says(sentence, "slows_quickly"):
        said.keep = 0.25
    elif says(sentence, "slows"):
        stop = seconds(sentence)
        said.keep = 0.05 ** (1.0 / stop) if stop else 0.5
    if says(sentence, "no_bounce"):
        said.bounce = 0.05
    elif says(sentence, "bounce_low"):
        said.bounce = 0.35
    elif says(sentence, "bounce_very_high"):
        said.bounce = 0.9
    elif says(sentence, "bounce_high"):
        said.bounce = 0.75
    if said.falls and says(sentence, "slow"):
        said.fall_scale = 0.5
    if pulled or pushed:
        side = _SIDE.search(sentence.lower())
        said.pull = (1.0 if pulled and not pushed else -1.0, side[1] if side else "")
        if says(sentence, "force_gentle"):
            said.force = "gentle"
        elif says(sentence, "force_strong"):
            said.force = "strong"


def read_prompt(text: str, objects: list[motion.Blob]) -> PromptPhysics:
    """What a prompt says about each perceived object, sentence by sentence (see the module docstring).

    >>> ball = motion.Blob(10, 10, 80, "grey", (5, 5, 10, 10), 1, "round", "ball", "the grey ball")
    >>> said = read_prompt("The grey ball rolls to the right, slows down and stops. It does not bounce.", [ball])
    >>> s = said.objects[0]
    >>> s.moves, s.heading, round(s.keep, 2), s.bounce
    (True, 'right', 0.5, 0.05)
    """
    found = PromptPhysics()
    last: list[int] = []
    for sentence in (s.strip() for s in _SENTENCE.split(text)):
        if not sentence:
            continue
        named = motion.subjects(sentence, objects)
        if not named and _PRONOUN.match(sentence):
            named = last
        if _EVERYONE.search(sentence) and not named:
            _said_in(sentence, found.everyone)
            continue
        for k in named:
            _said_in(sentence, found.objects.setdefault(k, Said()))
        if named:
            last = named
    return found


# ---------------------------------------------------------------------------------------------- the scene


def _pull_source(support: np.ndarray, floor_y: float, x: float, y: float, side: str) -> tuple[float, float]:
    """Where a stated pull or push comes from: the nearest thing standing on the floor on ``side`` of ``x`` (the
    middle of its columns, halfway up), else the frame's edge on that side at height ``y``.

    >>> support = np.array([50.0] * 30 + [30.0] * 10 + [50.0] * 10)
    >>> _pull_source(support, 50.0, 10.0, 45.0, "right"), _pull_source(support, 50.0, 10.0, 45.0, "left")
    ((34.5, 40.0), (0.0, 45.0))
    """
    first = _face(support, floor_y, x, side)
    if first is None:
        return (float(len(support) - 1) if side == "right" else 0.0), y
    raised = support < floor_y - 3
    run = [first]
    step = 1 if side == "right" else -1
    while 0 <= run[-1] + step < len(support) and raised[run[-1] + step]:
        run.append(run[-1] + step)
    top = float(support[run].mean())
    return float(np.mean(run)), (top + floor_y) / 2


def _face(support: np.ndarray, floor_y: float, x: float, side: str) -> int | None:
    """The column where the first thing standing on the floor on ``side`` of ``x`` begins (``None`` where there
    is none).

    >>> support = np.array([50.0] * 30 + [30.0] * 10 + [50.0] * 10)
    >>> _face(support, 50.0, 10.0, "right"), _face(support, 50.0, 45.0, "left"), _face(support, 50.0, 10.0, "left")
    (30, 39, None)
    """
    raised = support < floor_y - 3
    columns = np.arange(len(support))
    ahead = np.flatnonzero(raised & (columns > x if side == "right" else columns < x))
    if not len(ahead):
        return None
    return int(ahead[0] if side == "right" else ahead[-1])


def stop_short_strength(speed: float, start: float, stop: float, soft: float) -> float:
    """The start acceleration of a repelling :class:`Pull` (softened inverse square) that brings a body closing
    in at ``speed`` from distance ``start`` to rest at distance ``stop``: the work of the field over the way,
    ``strength * (start² + soft²) / soft * (atan(start / soft) - atan(stop / soft))``, equals ``speed² / 2``.

    >>> a = stop_short_strength(90.0, 140.0, 30.0, 12.0)
    >>> round(a, 2)
    8.34
    >>> from math import atan
    >>> round(a * (140.0**2 + 12.0**2) / 12.0 * (atan(140.0 / 12.0) - atan(30.0 / 12.0)) - 90.0**2 / 2, 6)
    0.0
    """
    span = math.atan(start / soft) - math.atan(stop / soft)
    return speed * speed * soft / (2.0 * (start * start + soft * soft) * max(span, 1e-6))


def turning_friction(
    speed: float, start: float, stop: float, soft: float, gravity: float, margin: float = 1.5
) -> float:
    """The largest friction coefficient with which a body closing in at ``speed`` on a repelling :class:`Pull`
    still stops at distance ``stop`` and is pushed back: the field's strength is what the speed left after
    friction's work spends (:func:`stop_short_strength`), and at ``stop`` the field must exceed ``margin`` times
    the friction.

    >>> mu = turning_friction(90.0, 140.0, 30.0, 12.0, 3000.0)
    >>> a = stop_short_strength(math.sqrt(90.0**2 - 2 * mu * 3000.0 * 110.0), 140.0, 30.0, 12.0)
    >>> round(a * (140.0**2 + 12.0**2) / (30.0**2 + 12.0**2) / (mu * 3000.0), 6)
    1.5
    """
    reach = (start * start + soft * soft) / soft * (math.atan(start / soft) - math.atan(stop / soft))
    rise = (start * start + soft * soft) / (stop * stop + soft * soft)
    way = start - stop
    return speed * speed / 2 * rise / reach / (margin * gravity + gravity * way * rise / reach)


def surface_polyline(surface: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """The per-column support heights of :func:`physics_iq.motion.support_surface` as a few ``(x, y)`` points
    (Douglas-Peucker within ``tolerance`` px), ready to become static segments.

    >>> surface_polyline(np.array([50.0] * 10 + [40.0 - k for k in range(10)])).tolist()
    [[0.0, 50.0], [9.0, 50.0], [10.0, 40.0], [19.0, 31.0]]
    """
    points = np.stack([np.arange(len(surface), dtype=np.float32), surface.astype(np.float32)], axis=1)
    simplified = cv2.approxPolyDP(points.reshape(-1, 1, 2), tolerance, closed=False).reshape(-1, 2)
    return simplified.astype(np.float64)


def prefix_tracks(
    prefix: np.ndarray, perception: motion.Perception, fps: float, n: int = 4
) -> dict[int, np.ndarray]:
    """Positions ``(n, 2)`` (oldest first, the switch frame last; NaN where not seen) of each perceived object
    that moved, tracked backwards through the last ``n`` prefix frames."""
    moving = [b for b in perception.objects if b.moving]
    if len(prefix) < 3 or not moving:
        return {}
    window = prefix[-n:][::-1]
    tracks = motion.track_objects(window, moving, perception.labels, perception.background, fps)
    return {perception.objects.index(b): t.xy[::-1] for b, t in zip(moving, tracks, strict=True)}


def prefix_velocities(
    prefix: np.ndarray, perception: motion.Perception, fps: float
) -> dict[int, tuple[float, float]]:
    """Velocity (px/s) at the switch frame of each perceived object that moved, by tracking it backwards
    through the last prefix frames."""
    return _velocities(prefix_tracks(prefix, perception, fps), fps)


def _velocities(tracks: dict[int, np.ndarray], fps: float) -> dict[int, tuple[float, float]]:
    """Velocity at the end of each track (:func:`motion.end_velocity` of its last three positions)."""
    return {k: motion.end_velocity(xy, fps) for k, xy in tracks.items()}


def sliding_friction(xy: np.ndarray, fps: float, gravity: float) -> float | None:
    """The friction coefficient a thing sliding sideways shows in its last prefix frames: its deceleration
    (a parabola fitted to its horizontal positions), less what half a pixel of jitter can fake at this frame
    rate, over gravity, within 0..0.5; ``None`` where the track is too short or the motion is not sideways.

    >>> t = np.arange(4) / 8.0
    >>> xy = np.stack([100 + 90 * t - 0.5 * 96.0 * t**2, np.full(4, 50.0)], axis=1)  # slowing by 96 px/s²
    >>> round(sliding_friction(xy, 8.0, 320.0), 3), sliding_friction(xy[:2], 8.0, 320.0)
    (0.2, None)
    """
    part = xy[~np.isnan(xy[:, 0])]
    if len(part) < 4 or gravity <= 0:
        return None
    t = np.arange(len(part)) / fps
    half_ax, vx = (float(c) for c in np.polyfit(t, part[:, 0], 2)[:2])
    vy = float(np.polyfit(t, part[:, 1], 1)[0])
    speed = vx + 2 * half_ax * t[-1]
    if abs(speed) < 8 or abs(vy) > 0.3 * abs(speed):
        return None
    jitter = 0.5 * fps * fps  # px/s²: half a pixel over one frame interval squared
    slowing = -2 * half_ax * math.copysign(1.0, speed) - jitter
    return float(min(max(slowing / gravity, 0.0), 0.5))


@dataclass(frozen=True)
class _Sprite:
    pixels: np.ndarray  # (h, w, 3) float
    alpha: np.ndarray  # (h, w) float 0..1
    dx: float  # sprite origin relative to the object's centroid
    dy: float


def _sprites(frame: np.ndarray, blobs: list[motion.Blob], labels: np.ndarray) -> list[_Sprite]:
    sprites = []
    height, width = labels.shape
    for blob in blobs:
        x0, y0, w, h = blob.bbox
        pad = 2
        xa, ya = max(0, x0 - pad), max(0, y0 - pad)
        xb, yb = min(width, x0 + w + pad), min(height, y0 + h + pad)
        mask = (labels[ya:yb, xa:xb] == blob.label).astype(np.float32)
        alpha = cv2.GaussianBlur(mask, (3, 3), 0)  # soft edges: the mask is a hard pixel set
        sprites.append(
            _Sprite(
                pixels=frame[ya:yb, xa:xb].astype(np.float32),
                alpha=np.clip(alpha * 1.3, 0, 1),
                dx=xa - blob.x,
                dy=ya - blob.y,
            )
        )
    return sprites


def _rotated(sprite: _Sprite, angle: float) -> _Sprite:
    """The sprite turned by ``angle`` radians about the object's centroid (image axes, y down)."""
    if abs(angle) < 1e-3:
        return sprite
    h, w = sprite.alpha.shape
    cx, cy = -sprite.dx, -sprite.dy
    size = math.ceil(2 * math.hypot(max(cx, w - cx), max(cy, h - cy))) + 2
    matrix = cv2.getRotationMatrix2D((cx, cy), -math.degrees(angle), 1.0)
    matrix[:, 2] += np.array([size / 2 - cx, size / 2 - cy])
    pixels = cv2.warpAffine(sprite.pixels, matrix, (size, size), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(sprite.alpha, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return _Sprite(pixels, alpha, -size / 2, -size / 2)


def poured(
    frames: np.ndarray,
    switch: np.ndarray,
    background: np.ndarray,
    mask: np.ndarray,
    pour: Pour,
    gravity: float,
    fps: float,
    rng: np.random.Generator,
    grain: float = 1.5,
) -> np.ndarray:
    """``frames`` (``1 / fps`` apart, the first one after the switch frame) with a heap of beads (``mask`` in the
    switch frame) running out: grains ``2 * grain`` px across leave it top layer first at an even rate over
    ``pour.seconds``, fall from the outlet under ``gravity`` (px/s²) and pile up where they land, sliding off a
    pile steeper than about 45 degrees; each keeps the colour of a pixel of the heap. A stand-in for granular
    flow, not a simulation of it: the grains do not collide in the air.

    >>> switch = np.full((60, 40, 3), 200, np.uint8)
    >>> switch[10:20, 15:25] = (200, 30, 30)
    >>> mask = np.all(switch == (200, 30, 30), axis=2)
    >>> frames = np.repeat(switch[None], 16, axis=0)
    >>> out = poured(frames, switch, np.full_like(switch, 200), mask, Pour(0, (20.0, 19.0), 55.0, 1.0),
    ...              400.0, 8.0, np.random.default_rng(0))
    >>> red = out[..., 1] < 150
    >>> int(red[-1, 10:20].sum()), int(red[-1, 45:56].sum()) > 40  # the heap has run out into a pile below
    (0, True)
    """
    width = frames.shape[2]
    step = max(2, round(2 * grain))
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return frames
    cells = [
        (y, x)
        for y in range(int(ys.min()), int(ys.max()) + 1, step)
        for x in range(int(xs.min()), int(xs.max()) + 1, step)
        if mask[y : y + step, x : x + step].any()
    ]
    cells.sort(key=lambda c: (c[0], abs(c[1] - pour.outlet[0])))  # the top layer runs out first
    # Each grain the colour of one of the heap's pixels, spread over them by a large prime stride.
    colours = switch[ys, xs][(np.arange(len(cells)) * 7919) % len(ys)]
    leave = (np.arange(len(cells)) + 1) / max(len(cells), 1) * pour.seconds
    # Where each grain comes to rest: near the stream, on the grains before it.
    heights = np.zeros(width)
    rest = []
    for k in range(len(cells)):
        col = round(pour.outlet[0] + float(rng.normal(0.0, 0.5 + 0.15 * math.sqrt(k))))
        col = min(max(col, 0), width - 1)
        while True:  # a grain on a pile steeper than its neighbours rolls down to the lower side
            lower = [
                c for c in (col - step, col + step) if 0 <= c < width and heights[c] < heights[col] - step
            ]
            if not lower:
                break
            col = min(lower, key=lambda c: heights[c])
        rest.append((float(col), pour.lands - heights[col] - grain))
        heights[max(0, col - step // 2) : col + step // 2 + 1] += 0.8 * step
    out = frames.copy()
    gone = np.zeros(mask.shape, bool)
    for t in range(len(out)):
        now = (t + 1) / fps
        left = int(np.searchsorted(leave, now, side="right"))
        for y, x in cells[:left]:
            gone[y : y + step, x : x + step] = True
        frame = out[t]
        frame[gone & mask] = background[gone & mask]
        for k in range(left):
            rest_x, bottom = rest[k]
            gy = min(pour.outlet[1] + grain + 0.5 * gravity * (now - leave[k]) ** 2, bottom)
            gx = pour.outlet[0] if gy < bottom else rest_x
            colour = tuple(int(c) for c in colours[k])
            cv2.circle(frame, (round(gx), round(gy)), max(1, round(grain)), colour, -1, cv2.LINE_AA)
    return out


def _composite(
    background: np.ndarray, sprites: list[_Sprite], positions: np.ndarray, angles: np.ndarray | None = None
) -> np.ndarray:
    canvas = background.astype(np.float32)
    height, width = canvas.shape[:2]
    for k, (sprite, (x, y)) in enumerate(zip(sprites, positions, strict=True)):
        if angles is not None:
            sprite = _rotated(sprite, float(angles[k]))
        ox, oy = round(x + sprite.dx), round(y + sprite.dy)
        h, w = sprite.alpha.shape
        xa, ya, xb, yb = max(0, ox), max(0, oy), min(width, ox + w), min(height, oy + h)
        if xa >= xb or ya >= yb:
            continue  # left the frame
        alpha = sprite.alpha[ya - oy : yb - oy, xa - ox : xb - ox, None]
        pixels = sprite.pixels[ya - oy : yb - oy, xa - ox : xb - ox]
        canvas[ya:yb, xa:xb] = alpha * pixels + (1 - alpha) * canvas[ya:yb, xa:xb]
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _Rod:
    """A rod or cord a body swings on: drawn from its pivot to the body in every frame."""

    body: int
    pivot: tuple[float, float]
    colour: tuple[float, float, float]
    width: int = 2


def _lift_rods(
    background: np.ndarray, switch: np.ndarray, bodies: list[SimBody]
) -> tuple[np.ndarray, list[_Rod]]:
    """The background without the rods the swinging bodies hang from (painted over from their surroundings), and
    the rods, so that each turns with its body instead of staying behind as part of the wall.

    >>> frame = np.full((60, 80, 3), 200, np.uint8)
    >>> _ = cv2.line(frame, (40, 5), (40, 40), (20, 20, 20), 2)
    >>> bob = SimBody(40.0, 45.0, 0.0, 0.0, 5.0, pivot=(40.0, 5.0))
    >>> clean, (rod,) = _lift_rods(frame, frame, [bob])
    >>> int(frame[20, 40, 0]), abs(int(clean[20, 40, 0]) - 200) < 5, [round(c) for c in rod.colour]
    (20, True, [20, 20, 20])
    """
    rods = []
    mask = np.zeros(background.shape[:2], np.uint8)
    for k, b in enumerate(bodies):
        if b.pivot is None or b.pinned:
            continue
        px, py = b.pivot
        length = math.hypot(b.x - px, b.y - py)
        if length <= b.radius:
            continue
        # The rod ends at the body's rim; its colour is the median along it (robust to the wall it crosses).
        ex, ey = b.x - (b.x - px) * b.radius / length, b.y - (b.y - py) * b.radius / length
        line = np.zeros_like(mask)
        cv2.line(line, (round(px), round(py)), (round(ex), round(ey)), 1, 1)
        on = switch[line > 0].astype(np.float32)
        if not len(on):
            continue
        red, green, blue = (float(c) for c in np.median(on, axis=0))
        cv2.line(mask, (round(px), round(py)), (round(ex), round(ey)), 1, 4)
        rods.append(_Rod(k, (px, py), (red, green, blue)))
    if not rods:
        return background, rods
    return cv2.inpaint(background, mask, 3, cv2.INPAINT_TELEA), rods


def _with_rods(background: np.ndarray, rods: list[_Rod], positions: np.ndarray) -> np.ndarray:
    """The background with each rod drawn from its pivot to where its body is now."""
    if not rods:
        return background
    canvas = background.copy()
    for rod in rods:
        x, y = positions[rod.body]
        cv2.line(
            canvas,
            (round(rod.pivot[0]), round(rod.pivot[1])),
            (round(float(x)), round(float(y))),
            rod.colour,
            rod.width,
            cv2.LINE_AA,
        )
    return canvas


def _box_of(labels: np.ndarray, blob: motion.Blob) -> tuple[float, float, float]:
    """Width, height and angle (radians, image axes) of a block's mask."""
    ys, xs = np.nonzero(labels == blob.label)
    points = np.stack([xs, ys], axis=1).astype(np.float32)
    (_, _), (w, h), degrees = cv2.minAreaRect(points)
    return float(w + 1.0), float(h + 1.0), math.radians(degrees)


def _expectation_for(
    expectations: Any, blob: motion.Blob, width: int, height: int
) -> Mapping[str, Any] | None:
    """The context expectation whose normalised position is closest to the object (within 8 % of the frame)."""
    if not isinstance(expectations, list):
        return None
    best, best_d = None, 0.08
    for item in expectations:
        if not isinstance(item, Mapping):
            continue
        try:
            d = math.hypot(float(item["x"]) - blob.x / width, float(item["y"]) - blob.y / height)
        except (KeyError, TypeError, ValueError):
            continue
        if d < best_d:
            best, best_d = item, d
    return best


_SPEED_CLASS = {
    "none": 0.0,
    "slow": SPEED_WORDS["slowly"],
    "medium": SPEED_WORDS["steadily"],
    "fast": SPEED_WORDS["quickly"],
}
_BOUNCE_CLASS = {"none": 0.05, "low": 0.35, "high": 0.75}
_FRICTION_CLASS = {"low": 0.9, "medium": 0.5, "high": 0.2}
_HEADING = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def _apply_expectation(said: Said, item: Mapping[str, Any], smooth: bool = False) -> None:
    """Structured numbers from the caller fill in what the words left open; the words win where they spoke.

    The prompt is what every video model reads, and its sentences are the VLM's considered statement; the
    classes of the structured fields are coarse (three speeds, three bounces), so they complement the words
    instead of overriding them. A prompt that calls the surface smooth or icy has spoken about friction.
    """
    spoke = said.still or said.falls or said.moves or said.free or said.swings
    motion_kind = str(item.get("motion", "")).lower()
    if not spoke:
        if motion_kind == "still":
            said.still = True
        elif motion_kind == "falling":
            said.falls = True
        elif motion_kind in ("moving", "rolling", "sliding", "swinging", "rising"):
            said.moves = True
    heading = str(item.get("direction", "none")).lower()
    if heading in _HEADING and said.heading is None:
        said.heading = heading
    speed = str(item.get("speed", "")).lower()
    if speed in _SPEED_CLASS and said.moves and said.speed is None:
        said.speed = _SPEED_CLASS[speed]
    bounce = str(item.get("bounce", "")).lower()
    if bounce in _BOUNCE_CLASS and said.bounce is None:
        said.bounce = _BOUNCE_CLASS[bounce]
    friction = str(item.get("friction", "")).lower()
    if friction in _FRICTION_CLASS and said.keep is None and not (smooth and friction != "low"):
        said.keep = _FRICTION_CLASS[friction]


@dataclass(frozen=True)
class Pour:
    """A heap of beads or sand that is let go: it runs out of its lowest point (``outlet``, px) in
    ``seconds``, top layer first, and falls onto what is below (``lands``, the row the stream stops at)."""

    body: int
    outlet: tuple[float, float]
    lands: float
    seconds: float


@dataclass(frozen=True)
class Plan:
    """What :meth:`PhysicsPriorGenerator.plan` decided: bodies, parameters, the floor row and the static
    surface polyline (``(N, 2)`` points ``(x, y)``: the floor with whatever stands on it); and what it read them
    from, which rendering reuses: the perception of the switch frame."""

    bodies: list[SimBody]
    params: WorldParams
    floor_y: float
    surface: np.ndarray
    perception: motion.Perception = field(repr=False)
    pours: list[Pour] = field(default_factory=list)

    @property
    def background(self) -> np.ndarray:
        """The scene without its objects."""
        return self.perception.background

    @property
    def blobs(self) -> list[motion.Blob]:
        """The switch frame's objects (one body each)."""
        return self.perception.objects

    @property
    def labels(self) -> np.ndarray:
        """Their label image."""
        return self.perception.labels


class PhysicsPriorGenerator:
    """Prompt-driven 2D physics extrapolation (offline stand-in, not a neural model).

    Args:
        substeps: Physics steps per output frame.
        velocity_jitter: Relative spread of the seed's perturbation of a measured velocity.
        scale_range: Prior on the scene's true scale relative to the one the objects' typical sizes imply
            (log-uniform): real objects vary in size, so gravity in pixels is uncertain by about this much.
        restitution_range: Prior on restitution when neither the prompt nor the material says (uniform).
        damping_range: Prior on the velocity fraction kept per second (uniform).
        pull_range: Prior on a stated attraction/repulsion's acceleration at the start, in g (log-uniform).
        stop_share: For a thing heading into a stated repulsion: how far along its way to the source it gets
            before turning back (uniform), by how hard the prompt says the push is (``""`` not said,
            ``"gentle"``, ``"strong"``).
        pour_seconds: Prior on how long a heap of beads or sand that is let go takes to run out (uniform).
        delay_s: Seconds to sleep per generation, standing in for a slow model (used to test interruption).
    """

    name = "physics-prior"
    #: Each call builds its own pymunk space and frames: instances may be called from several threads.
    concurrent_safe = True
    prompt_style = PromptStyle(words=(20, 80), note="An offline physics stand-in that reads plain sentences.")
    #: Numbers the words leave open come from the prediction's structured expectations.
    reads_expectations = True

    def __init__(
        self,
        substeps: int = 40,
        velocity_jitter: float = 0.15,
        scale_range: tuple[float, float] = (0.5, 2.0),
        restitution_range: tuple[float, float] = (0.1, 0.9),
        damping_range: tuple[float, float] = (0.5, 1.0),
        pull_range: tuple[float, float] = (0.02, 0.5),
        stop_share: dict[str, tuple[float, float]] | None = None,
        pour_seconds: tuple[float, float] = (2.0, 6.0),
        delay_s: float = 0.0,
        **unused: object,
    ) -> None:
        if unused:
            logger.info("physics-prior ignores options %s (it has no model, dtype or device)", sorted(unused))
        self.substeps = int(substeps)
        self.delay_s = float(delay_s)
        self.velocity_jitter = float(velocity_jitter)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.restitution_range = (float(restitution_range[0]), float(restitution_range[1]))
        self.damping_range = (float(damping_range[0]), float(damping_range[1]))
        self.pull_range = (float(pull_range[0]), float(pull_range[1]))
        self.pour_seconds = (float(pour_seconds[0]), float(pour_seconds[1]))
        self.stop_share = stop_share or {"": (0.5, 0.95), "gentle": (0.8, 0.97), "strong": (0.25, 0.6)}

    def plan(self, request: GenerationRequest) -> Plan:
        """The start state, parameters and static geometry this request and seed lead to (for tests and logs)."""
        rng = np.random.default_rng(request.seed)
        switch = request.switch_frame
        height, width = switch.shape[:2]
        perception = motion.perceive(request.prefix, request.prompt, request.fps)
        objects = perception.objects
        said = read_prompt(request.prompt, objects)
        expectations = request.context.get("expectations") if request.context else None
        tracks = prefix_tracks(request.prefix, perception, request.fps) if request.mode == "v2v" else {}
        measured = _velocities(tracks, request.fps)
        floor_y, support = perception.floor_y, perception.support.copy()
        for k, (vx, vy) in measured.items():
            # Rolling or sliding along something: that something is under its whole footprint (the object
            # itself hides it, so the background cannot say where the edge is).
            blob = objects[k]
            if abs(vx) > 8 and abs(vy) < 0.5 * abs(vx) + 10:
                a, b = max(0, round(blob.x - blob.radius)), min(width, round(blob.x + blob.radius) + 1)
                support[a:b] = np.minimum(support[a:b], blob.bottom + 1)
        # Gravity in pixels: 9.81 m/s² at the scale the objects' sizes imply, uncertain by the scale prior.
        # No known object: a table-top scene about 1.2 m high.
        px_per_m = motion.scale_px_per_m(objects) or height / 1.2
        low, high = self.scale_range
        g = 9.81 * px_per_m * float(np.exp(rng.uniform(np.log(low), np.log(high))))
        images = motion.mirror_images(objects, floor_y)
        bodies: list[SimBody] = []
        pours: list[Pour] = []
        default_bounce = float(rng.uniform(*self.restitution_range))
        default_keep = float(rng.uniform(*self.damping_range))
        fall_scales = []
        # "A smooth track", "an icy floor": things slide with hardly any friction or drag.
        smooth = bool(SMOOTH_WORDS & set(words(request.prompt)))
        world_mu = 0.02 if smooth else 0.5
        for k, blob in enumerate(objects):
            if k in images:
                bodies.append(SimBody(blob.x, blob.y, 0.0, 0.0, blob.radius, mirror_of=images[k]))
                continue
            # Each object draws from its own stream, keyed by where it is: its physics does not change when
            # the perception lists the objects in another order (a reworded description names them in another).
            own = np.random.default_rng([request.seed, max(0, round(blob.x)), max(0, round(blob.y))])
            s = said.objects.get(k, Said())
            item = _expectation_for(expectations, blob, width, height)
            if item is not None:
                _apply_expectation(s, item, smooth)
                lands = item.get("lands_at")
                col = int(min(max(round(blob.x), 0), width - 1))
                drop = float(support[col]) - (blob.y + blob.radius)
                if isinstance(lands, int | float) and lands > 0 and drop > 2:
                    t_land = float(lands) * request.num_frames / request.fps
                    g = 2.0 * drop / (t_land * t_land)  # h = g t² / 2
            if s.fall_scale is not None:
                fall_scales.append(s.fall_scale)
            vx, vy = measured.get(k, (0.0, 0.0))
            if k in measured and not s.same_speed:  # "at the same speed it had": exactly the measured one
                vx *= 1 + own.normal(0, self.velocity_jitter)
                vy *= 1 + own.normal(0, self.velocity_jitter)
            if s.moves and s.heading is not None and (k not in measured or math.hypot(vx, vy) < 5):
                share = s.speed if s.speed is not None else SPEED_WORDS["steadily"]
                speed = share * width * float(np.exp(own.normal(0, 0.3)))
                dx, dy = _HEADING[s.heading]
                vx, vy = dx * speed, dy * speed
            resting = math.hypot(vx, vy) < 5
            col = int(min(max(round(blob.x), 0), width - 1))
            below = float(support[col])
            supported = blob.bottom >= below - 4  # on it, or a little into it (the support was hidden)
            released = s.falls or said.everyone.falls
            pinned = (
                s.still or said.everyone.still or (resting and not supported and not released and not s.moves)
            )
            if blob.shape in ("grains", "fluid"):
                pinned = True  # a pile of beads or a body of liquid is not one rigid body
            if blob.shape == "grains" and released:
                ys, xs = np.nonzero(perception.labels == blob.label)
                bottom = int(ys.max())
                outlet = (float(xs[ys >= bottom - 1].mean()), float(bottom))
                under = float(support[int(min(max(round(outlet[0]), 0), width - 1))])
                # How long the heap takes to run out: a few seconds for a funnel's worth, by the seed.
                seconds = float(own.uniform(*self.pour_seconds))
                pours.append(Pour(len(bodies), outlet, under if under > bottom + 4 else floor_y, seconds))
            if blob.shape == "fluid":
                x0, y0, lw, lh = blob.bbox
                bodies.append(
                    SimBody(blob.x, blob.y, 0.0, 0.0, blob.radius, True, region=(x0, y0, x0 + lw, y0 + lh))
                )
                continue
            asleep = resting and supported and not released and not s.moves and s.pull is None and not pinned
            # Never start inside what it stands on, unless it rests there as it is (then it stays put).
            y = (
                blob.y
                if asleep
                else min(blob.y, below - (blob.bbox[3] / 2 if blob.shape == "box" else blob.radius))
            )
            # A block sliding in the prefix shows its friction by how fast it slowed (none on an air track).
            grip = (
                sliding_friction(tracks[k], request.fps, g) if k in tracks and blob.shape != "round" else None
            )
            if s.keep == 1.0 and blob.shape != "round":
                grip = 0.0  # "slides without slowing down"
            pull = None
            if s.pull is not None:
                sign, side = s.pull
                if not side:
                    side = "right" if float(np.argmin(support)) > blob.x else "left"
                tx, ty = _pull_source(support, floor_y, blob.x, y, side)
                d0, soft = math.hypot(tx - blob.x, ty - y), blob.radius + 4.0
                closing = (vx * (tx - blob.x) + vy * (ty - y)) / max(d0, 1e-6)
                if sign < 0 and closing > 5:
                    # Heading into a push it is said to turn back from: it stops short of the magnet, so the
                    # strength is what spends its speed over part of the way (further with "only as it comes
                    # close", less far with "strongly").
                    lo, hi = self.stop_share[s.force or ""]
                    face = _face(support, floor_y, blob.x, side)
                    contact = soft + (abs(tx - face) if face is not None else 0.0)
                    stop = min(contact + (1 - own.uniform(lo, hi)) * max(d0 - contact, 0.0), 0.95 * d0)
                    # Sliding friction spends part of the speed on the way (a rolling ball loses next to none),
                    # and where it stops the push must beat friction, or it would not come back as the words
                    # say: the friction is at most what allows that.
                    mu = 0.0 if blob.shape == "round" else grip if grip is not None else world_mu
                    mu = min(mu, turning_friction(closing, d0, stop, soft, g))
                    if blob.shape != "round":
                        grip = mu
                    left = max(closing * closing - 2 * mu * g * (d0 - stop), 0.0)
                    strength = stop_short_strength(math.sqrt(left), d0, stop, soft)
                else:
                    lo, hi = np.log(self.pull_range[0]), np.log(self.pull_range[1])
                    # "Only as it comes close" / "strongly": the lower or upper third of the prior.
                    if s.force == "gentle":
                        hi = lo + (hi - lo) / 3
                    elif s.force == "strong":
                        lo = hi - (hi - lo) / 3
                    strength = float(np.exp(own.uniform(lo, hi))) * 9.81 * px_per_m
                pull = Pull(tx, ty, strength, sign, d0, soft)
            restitution = s.bounce
            if restitution is None and blob.bounce is not None:
                restitution = 0.75 if blob.bounce == "bouncy" else 0.08
            keep = s.keep if s.keep is not None else said.everyone.keep
            pivot = None
            if not pinned and (s.swings or s.falls) and TETHER_WORDS & set(words(request.prompt)):
                pivot = motion.tether(switch, blob)  # hangs from a rod or cord: it swings about its far end
            box = None
            angle = 0.0
            if blob.shape == "box":
                bw, bh, angle = _box_of(perception.labels, blob)
                box = (bw, bh)
            bodies.append(
                SimBody(
                    blob.x,
                    y,
                    vx,
                    vy,
                    blob.radius,
                    pinned,
                    pull=pull,
                    box=box,
                    angle=angle,
                    restitution=restitution,
                    damping=keep,
                    pivot=pivot,
                    asleep=asleep,
                    on_support=supported,
                    friction=grip,
                    buoyancy=FLOATING_BUOYANCY if s.floats else None,
                )
            )
        if fall_scales:
            g *= float(np.mean(fall_scales))
        friction = world_mu
        if smooth:
            default_keep = max(default_keep, 0.95)
        params = WorldParams(gravity=g, restitution=default_bounce, damping=default_keep, friction=friction)
        return Plan(bodies, params, floor_y, surface_polyline(support), perception, pours)

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Extrapolate ``request.num_frames`` frames after the switch frame."""
        if request.prefix.ndim != 4 or request.prefix.shape[-1] != 3 or len(request.prefix) == 0:
            raise GenerationError(f"physics-prior: prefix must be (P, H, W, 3), got {request.prefix.shape}")
        plan = self.plan(request)
        bodies, params = plan.bodies, plan.params
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        switch = request.switch_frame
        sprites = _sprites(switch, plan.blobs, plan.labels)
        if bodies:
            states = simulate(
                bodies,
                params,
                floor_y=plan.floor_y,
                width=float(switch.shape[1]),
                n_frames=request.num_frames,
                fps=request.fps,
                substeps=self.substeps,
                surface=plan.surface,
                with_angles=True,
            )
            # Blocks turn with their bodies; balls keep their look (their shading comes from the light).
            start = np.array([b.angle for b in bodies])
            turns = np.array([b.box is not None for b in bodies])
            background, rods = _lift_rods(plan.background, switch, bodies)
            # A liquid is painted first: what sinks into a clear tank is seen through it, not hidden behind it.
            order = sorted(range(len(bodies)), key=lambda k: bodies[k].region is None)
            sprites = [sprites[k] for k in order]
            frames = np.stack(
                [
                    _composite(
                        _with_rods(background, rods, s[:, :2]),
                        sprites,
                        s[order, :2],
                        ((s[:, 2] - start) * turns)[order],
                    )
                    for s in states
                ]
            )
        else:  # nothing to move: the scene stays as it is
            frames = np.repeat(switch[None], request.num_frames, axis=0)
        for pour in plan.pours:
            blob = plan.blobs[pour.body]
            # The grains' own stream (keyed by the heap's place, apart from the plan's per-object draws).
            own = np.random.default_rng([request.seed, 7, max(0, round(blob.x)), max(0, round(blob.y))])
            frames = poured(
                frames,
                switch,
                plan.background,
                plan.labels == blob.label,
                pour,
                params.gravity,
                request.fps,
                own,
            )
        metadata = {
            "generator": self.name,
            "neural": False,
            "gravity": round(params.gravity, 2),
            "restitution": round(params.restitution, 3),
            "damping": round(params.damping, 3),
            "floor_y": plan.floor_y,
            "surface": [[round(x, 1), round(y, 1)] for x, y in plan.surface.tolist()],
            "objects": [
                {"name": blob.name, **asdict(replace(b, x=round(b.x, 1), y=round(b.y, 1)))}
                for blob, b in zip(plan.blobs, bodies, strict=True)
            ],
        }
        return check_output(
            request, GeneratedVideo(frames=frames, fps=request.fps, metadata=metadata), self.name
        )
