"""``physics-prior``: an offline stand-in for a video model — a 2D physics engine driven by the prompt.

NOT a neural model. It finds the coloured objects of the switch frame (:mod:`physics_iq.motion`), estimates their
velocity from the prefix (v2v) or the prompt (i2v), reads physical parameters from the prompt's wording
(gravity, bounciness, slowing down, per-object motion), samples whatever the prompt leaves open from broad
priors using the request's seed, extrapolates with pymunk, and renders by compositing each object's sprite
onto the background (the prefix's temporal median, objects inpainted away). The static world is read from that
background too: the floor line, and whatever stands on it (ramps, steps, posts: :func:`physics_iq.motion.
support_surface`) as a polyline of static segments, so a released ball rolls down a ramp instead of falling
through it.

Because the parameters come from the words, a better prompt gives a better continuation — which is what the
refinement loop needs to be exercised offline. Phrases it understands (case-insensitive, per sentence, the
sentence naming the object's colour):

- ``the red ball moves right at 40 px/s and up at 20 px/s``  (per-object velocity)
- ``falls faster by about 300 px/s every second`` or ``300 px/s²``  (gravity)
- ``bounces back up with about 70% of its impact speed``; ``bounces high``; ``does not bounce``  (restitution)
- ``slows down by about 20% every second``; ``keeps moving at a steady speed``  (damping)
- ``stays still`` / ``stays where it is``  (object pinned)
- ``starts at rest``  (zero start velocity, but free to be hit and pushed)
- ``falls`` / ``drops`` / ``is released``  (an object at rest in the air is not supported)
- ``is pulled towards the magnet on the right`` / ``is attracted to ... left``  (a softened inverse-square pull
  towards the nearest thing standing on the floor on that side, or that side's edge; strength from the seed)
- ``is pushed back by the magnet on the left`` / ``is repelled ...``  (the same force, pushing away)
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np
import pymunk

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, check_output
from physics_iq import motion
from physics_iq.vocabulary import COLOURS, DIRECTIONS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimBody:
    """A disc in image coordinates (x right, y down), px and px/s.

    ``mirror_of`` marks the reflection of body ``mirror_of`` in the glossy ground surface: it is not simulated
    but drawn where the mirror puts it, as far below the surface as its object is above.
    """

    x: float
    y: float
    vx: float
    vy: float
    radius: float
    pinned: bool = False
    mirror_of: int | None = None
    pull: Pull | None = None


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


@dataclass(frozen=True)
class WorldParams:
    """Physical parameters of the 2D world.

    Attributes:
        gravity: Downward acceleration, px/s².
        restitution: Fraction of normal speed kept in a bounce (0..1).
        damping: Fraction of velocity kept per second (1 = no drag).
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
) -> np.ndarray:
    """Positions ``(n_frames, len(bodies), 2)`` at times ``1/fps .. n_frames/fps`` after the start state.

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
    space.damping = params.damping
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
    space.add(*walls)
    handles: list[pymunk.Body | None] = []
    for b in bodies:
        if b.mirror_of is not None:
            handles.append(None)
            continue
        if b.pinned:
            body = pymunk.Body(body_type=pymunk.Body.STATIC)
        else:
            mass = max(1e-3, b.radius**2)
            body = pymunk.Body(mass, pymunk.moment_for_circle(mass, 0, max(b.radius, 0.5)))
            body.velocity = (b.vx, b.vy)
            if abs(b.y + b.radius - floor_y) <= 3:
                # A ball moving along the floor is rolling (no slip: omega = v / r, y down); starting it
                # sliding would let friction eat 2/7 of its speed in the first frames.
                body.angular_velocity = b.vx / max(b.radius, 0.5)
        body.position = (b.x, b.y)
        shape = pymunk.Circle(body, max(b.radius, 0.5))
        shape.elasticity = min(max(params.restitution, 0.0), 0.99)
        shape.friction = params.friction
        space.add(body, shape)
        handles.append(body)
    out = np.zeros((n_frames, len(bodies), 2))
    dt = 1.0 / (fps * substeps)
    pulled: list[tuple[pymunk.Body, Pull]] = []
    for handle, b in zip(handles, bodies, strict=True):
        if handle is not None and b.pull is not None and handle.body_type == pymunk.Body.DYNAMIC:
            pulled.append((handle, b.pull))
    for t in range(n_frames):
        for _ in range(substeps):
            for body, pull in pulled:
                dx, dy = pull.x - body.position.x, pull.y - body.position.y
                distance = max(math.hypot(dx, dy), 1e-6)
                accel = pull.sign * pull.strength * (pull.start_distance**2 + pull.soft**2)
                accel /= distance**2 + pull.soft**2
                # pymunk clears applied forces after every step, so the field is applied before each one.
                body.apply_force_at_world_point(
                    (body.mass * accel * dx / distance, body.mass * accel * dy / distance), body.position
                )
            space.step(dt)
        for k, handle in enumerate(handles):
            if handle is not None:
                out[t, k] = (handle.position.x, handle.position.y)
        for k, b in enumerate(bodies):
            if b.mirror_of is not None:
                source = bodies[b.mirror_of]
                line = (source.y + b.y) / 2
                x, y = out[t, b.mirror_of]
                out[t, k] = (x + b.x - source.x, 2 * line - y)
    return out


@dataclass
class PromptPhysics:
    """What a prompt pins down; ``None`` means "not said", left to the priors.

    Attributes:
        gravity: px/s².
        restitution: 0..1.
        damping: Velocity fraction kept per second.
        velocity: Colour -> (vx, vy) px/s.
        still: Colours said to stay still.
        released: Colours said to fall/drop.
        bounces: The prompt says something bounces (without a number).
        pulls: Colour -> (+1 attracted / -1 pushed back, side of the source: "right" or "left").
    """

    gravity: float | None = None
    restitution: float | None = None
    damping: float | None = None
    velocity: dict[str, tuple[float, float]] = field(default_factory=dict)
    still: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)
    bounces: bool = False
    pulls: dict[str, tuple[float, str]] = field(default_factory=dict)


_NUM = r"(?:about |roughly |around )?(\d+(?:\.\d+)?)"
_VEL = re.compile(rf"\b(right|left|up|down)(?:wards?)? at {_NUM} ?px/s(?!²|\^2| every)", re.I)
_GRAVITY = [
    re.compile(rf"faster by {_NUM} ?px/s every second", re.I),
    re.compile(rf"{_NUM} ?px/s(?:²|\^2)", re.I),
]
_RESTITUTION = re.compile(rf"{_NUM} ?% of its (?:impact|falling|vertical) speed", re.I)
_DAMPING = re.compile(rf"slows? down by {_NUM} ?% (?:every|each|per) second", re.I)
_ATTRACTED = re.compile(
    r"\b(?:pulled|drawn|attracted)\b[^.;]*?\b(?:towards?|to)\b[^.;]*?\b(right|left)\b", re.I
)
_REPELLED = re.compile(r"\b(?:pushed (?:back|away)|repelled)\b[^.;]*?\b(right|left)\b", re.I)


def read_prompt(text: str) -> PromptPhysics:
    """Parse the physical parameters a prompt states.

    >>> p = read_prompt("The red ball moves right at 40 px/s and up at 10 px/s. It falls faster by about "
    ...                 "300 px/s every second and bounces back up with about 70% of its impact speed.")
    >>> p.velocity["red"], p.gravity, p.restitution
    ((40.0, -10.0), 300.0, 0.7)
    """
    found = PromptPhysics()
    for sentence in re.split(r"(?<=[.;!?])\s+|\n+", text):
        low = sentence.lower()
        colours = [c for c in COLOURS if re.search(rf"\b{c}\b", low)]
        moves = _VEL.findall(sentence)
        if moves and colours:
            vx = vy = 0.0
            for direction, value in moves:
                dx, dy = DIRECTIONS[direction.lower()]
                vx += dx * float(value)
                vy += dy * float(value)
            found.velocity[colours[0]] = (vx, vy)
        if colours and re.search(r"\bstays? (?:still|where it is|at rest|in place)\b", low):
            found.still.update(colours)
        elif colours and re.search(r"\bstarts? (?:at rest|still)\b", low):
            found.velocity.setdefault(colours[0], (0.0, 0.0))  # at rest, but free to be pushed
        if colours and re.search(r"\b(?:falls?|drops?|is released|let go)\b", low):
            found.released.update(colours)
        for pattern, sign in ((_ATTRACTED, 1.0), (_REPELLED, -1.0)):
            match = pattern.search(sentence)
            if colours and match:
                found.pulls[colours[0]] = (sign, match[1].lower())
        for pattern in _GRAVITY:
            match = pattern.search(sentence)
            if match and found.gravity is None:
                found.gravity = float(match[1])
        match = _RESTITUTION.search(sentence)
        if match:
            found.restitution = float(match[1]) / 100.0
        elif re.search(r"\b(?:does not|doesn't|never) bounce|\bwithout bouncing\b", low):
            found.restitution = 0.05
        elif re.search(r"\bbounces? high\b", low):
            found.restitution = 0.85
        elif re.search(r"\bbounc", low):
            found.bounces = True
        match = _DAMPING.search(sentence)
        if match:
            found.damping = max(0.0, 1.0 - float(match[1]) / 100.0)
        elif re.search(r"\bsteady speed\b|\bwithout slowing\b", low):
            found.damping = 1.0
    return found


def _background(prefix: np.ndarray) -> np.ndarray:
    """The scene without its coloured objects: temporal median (moving objects vanish), then inpainting."""
    return _background_and_hidden(prefix)[0]


def _background_and_hidden(prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_background` and the boolean mask of the pixels it had to inpaint (never seen uncovered)."""
    base: np.ndarray = np.median(prefix, axis=0).astype(np.uint8) if len(prefix) >= 5 else prefix[-1].copy()
    mask = cv2.dilate(motion.object_mask(base).astype(np.uint8), np.ones((5, 5), np.uint8))
    if mask.any():
        base = cv2.inpaint(base, mask, 3, cv2.INPAINT_TELEA)
    return base, mask.astype(bool)


def _pull_source(support: np.ndarray, floor_y: float, x: float, y: float, side: str) -> tuple[float, float]:
    """Where a stated pull or push comes from: the nearest thing standing on the floor on ``side`` of ``x`` (the
    middle of its columns, halfway up), else the frame's edge on that side at height ``y``.

    >>> support = np.array([50.0] * 30 + [30.0] * 10 + [50.0] * 10)
    >>> _pull_source(support, 50.0, 10.0, 45.0, "right"), _pull_source(support, 50.0, 10.0, 45.0, "left")
    ((34.5, 40.0), (0.0, 45.0))
    """
    raised = support < floor_y - 3
    columns = np.arange(len(support))
    ahead = raised & (columns > x if side == "right" else columns < x)
    if not ahead.any():
        return (float(len(support) - 1) if side == "right" else 0.0), y
    first = int(np.flatnonzero(ahead)[0] if side == "right" else np.flatnonzero(ahead)[-1])
    run = [first]
    step = 1 if side == "right" else -1
    while 0 <= run[-1] + step < len(support) and raised[run[-1] + step]:
        run.append(run[-1] + step)
    top = float(support[run].mean())
    return float(np.mean(run)), (top + floor_y) / 2


def surface_polyline(surface: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """The per-column support heights of :func:`physics_iq.motion.support_surface` as a few ``(x, y)`` points
    (Douglas-Peucker within ``tolerance`` px), ready to become static segments.

    >>> surface_polyline(np.array([50.0] * 10 + [40.0 - k for k in range(10)])).tolist()
    [[0.0, 50.0], [9.0, 50.0], [10.0, 40.0], [19.0, 31.0]]
    """
    points = np.stack([np.arange(len(surface), dtype=np.float32), surface.astype(np.float32)], axis=1)
    simplified = cv2.approxPolyDP(points.reshape(-1, 1, 2), tolerance, closed=False).reshape(-1, 2)
    return simplified.astype(np.float64)


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
        pad = 2  # anti-aliased rims are below the saturation threshold; take them along
        xa, ya = max(0, x0 - pad), max(0, y0 - pad)
        xb, yb = min(width, x0 + w + pad), min(height, y0 + h + pad)
        mask = (labels[ya:yb, xa:xb] == blob.label).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)
        sprites.append(
            _Sprite(
                pixels=frame[ya:yb, xa:xb].astype(np.float32),
                alpha=np.clip(alpha * 1.5, 0, 1),
                dx=xa - blob.x,
                dy=ya - blob.y,
            )
        )
    return sprites


def _composite(background: np.ndarray, sprites: list[_Sprite], positions: np.ndarray) -> np.ndarray:
    canvas = background.astype(np.float32)
    height, width = canvas.shape[:2]
    for sprite, (x, y) in zip(sprites, positions, strict=True):
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
class Plan:
    """What :meth:`PhysicsPriorGenerator.plan` decided: bodies, parameters, the floor row and the static
    surface polyline (``(N, 2)`` points ``(x, y)``: the floor with whatever stands on it); and what it read them
    from, which rendering reuses: the background and the switch frame's objects with their label image."""

    bodies: list[SimBody]
    params: WorldParams
    floor_y: float
    surface: np.ndarray
    background: np.ndarray = field(repr=False)
    blobs: list[motion.Blob] = field(repr=False)
    labels: np.ndarray = field(repr=False)


class PhysicsPriorGenerator:
    """Prompt-driven 2D physics extrapolation (offline stand-in, not a neural model).

    Args:
        substeps: Physics steps per output frame.
        velocity_jitter: Relative spread of the seed's perturbation of a velocity not stated in the prompt.
        gravity_range: Prior on gravity as multiples of the frame height per s² (uniform).
        restitution_range: Prior on restitution when the prompt does not say (uniform).
        damping_range: Prior on the velocity fraction kept per second (uniform).
        pull_range: Prior on a stated attraction/repulsion's acceleration at the start, as multiples of the
            frame height per s² (log-uniform: the two magnet scenes of the suite differ by about 4x).
        delay_s: Seconds to sleep per generation, standing in for a slow model (used to test interruption).
    """

    name = "physics-prior"
    #: Each call builds its own pymunk space and frames: instances may be called from several threads.
    concurrent_safe = True

    def __init__(
        self,
        substeps: int = 16,
        velocity_jitter: float = 0.25,
        gravity_range: tuple[float, float] = (0.8, 5.0),
        restitution_range: tuple[float, float] = (0.1, 0.9),
        damping_range: tuple[float, float] = (0.6, 1.0),
        pull_range: tuple[float, float] = (0.02, 0.5),
        delay_s: float = 0.0,
        **unused: object,
    ) -> None:
        if unused:
            logger.info("physics-prior ignores options %s (it has no model, dtype or device)", sorted(unused))
        self.substeps = int(substeps)
        self.delay_s = float(delay_s)
        self.velocity_jitter = float(velocity_jitter)
        self.gravity_range = (float(gravity_range[0]), float(gravity_range[1]))
        self.restitution_range = (float(restitution_range[0]), float(restitution_range[1]))
        self.damping_range = (float(damping_range[0]), float(damping_range[1]))
        self.pull_range = (float(pull_range[0]), float(pull_range[1]))

    def plan(self, request: GenerationRequest) -> Plan:
        """The start state, parameters and static geometry this request and seed lead to (for tests and logs)."""
        rng = np.random.default_rng(request.seed)
        switch = request.switch_frame
        blobs, labels = motion.detect_objects(switch)
        said = read_prompt(request.prompt)
        background, hidden = _background_and_hidden(request.prefix)
        floor_y = motion.detect_floor(background)
        # What stands on the floor (ramps, steps, posts) is static geometry; under the objects it is unseen.
        covered = cv2.dilate((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        support = motion.support_surface(background, floor_y, unknown=hidden | covered)
        measured: dict[int, tuple[float, float]] = {}
        if request.mode == "v2v" and len(request.prefix) >= 3:
            tracks = motion.track_objects(request.prefix[-3:], reference=None)
            # Associate prefix tracks with switch-frame blobs by colour and distance at the last frame.
            for k, blob in enumerate(blobs):
                for track in tracks:
                    last = track.xy[-1]
                    if track.colour == blob.colour and math.hypot(last[0] - blob.x, last[1] - blob.y) < 3:
                        measured[k] = motion.fit_velocity(track.xy, request.fps, at_end=True, n=2)
        height = switch.shape[0]
        g = said.gravity
        if g is None:
            g = float(rng.uniform(*self.gravity_range)) * height
        e = said.restitution
        if e is None:
            low, high = self.restitution_range
            e = float(rng.uniform(max(low, 0.4) if said.bounces else low, high))
        d = said.damping if said.damping is not None else float(rng.uniform(*self.damping_range))
        # Reflections in a glossy table are drawn from their object's motion, not simulated as balls.
        images = motion.mirror_images(blobs, floor_y)
        bodies = []
        for k, blob in enumerate(blobs):
            if k in images:
                bodies.append(SimBody(blob.x, blob.y, 0.0, 0.0, blob.radius, mirror_of=images[k]))
                continue
            if blob.colour in said.velocity:
                vx, vy = said.velocity[blob.colour]
                scale = 1.0 + rng.normal(0.0, 0.03)
                vx, vy = vx * scale, vy * scale
            else:
                vx, vy = measured.get(k, (0.0, 0.0))
                vx = vx * (1 + rng.normal(0, self.velocity_jitter)) + rng.normal(0, 3)
                vy = vy * (1 + rng.normal(0, self.velocity_jitter)) + rng.normal(0, 3)
            resting = math.hypot(vx, vy) < 5
            below = float(support[min(max(round(blob.x), 0), len(support) - 1)])
            supported = blob.y + blob.radius >= below - 3
            pinned = blob.colour in said.still or (
                resting and not supported and blob.colour not in said.released
            )
            y = min(blob.y, below - blob.radius)  # never start inside the floor or what stands on it
            pull = None
            if blob.colour in said.pulls:
                sign, side = said.pulls[blob.colour]
                tx, ty = _pull_source(support, floor_y, blob.x, y, side)
                low, high = self.pull_range
                strength = float(np.exp(rng.uniform(np.log(low), np.log(high)))) * height
                pull = Pull(tx, ty, strength, sign, math.hypot(tx - blob.x, ty - y), blob.radius + 4.0)
            bodies.append(SimBody(blob.x, y, vx, vy, blob.radius, pinned, pull=pull))
        params = WorldParams(gravity=g, restitution=e, damping=d)
        return Plan(bodies, params, floor_y, surface_polyline(support), background, blobs, labels)

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Extrapolate ``request.num_frames`` frames after the switch frame."""
        if request.prefix.ndim != 4 or request.prefix.shape[-1] != 3 or len(request.prefix) == 0:
            raise GenerationError(f"physics-prior: prefix must be (P, H, W, 3), got {request.prefix.shape}")
        plan = self.plan(request)
        bodies, params = plan.bodies, plan.params
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        switch = request.switch_frame
        background = plan.background
        sprites = _sprites(switch, plan.blobs, plan.labels)
        if bodies:
            positions = simulate(
                bodies,
                params,
                floor_y=plan.floor_y,
                width=float(switch.shape[1]),
                n_frames=request.num_frames,
                fps=request.fps,
                substeps=self.substeps,
                surface=plan.surface,
            )
            frames = np.stack([_composite(background, sprites, p) for p in positions])
        else:  # nothing to move: the scene stays as it is
            frames = np.repeat(switch[None], request.num_frames, axis=0)
        metadata = {
            "generator": self.name,
            "neural": False,
            "gravity": round(params.gravity, 2),
            "restitution": round(params.restitution, 3),
            "damping": round(params.damping, 3),
            "floor_y": plan.floor_y,
            "surface": [[round(x, 1), round(y, 1)] for x, y in plan.surface.tolist()],
            "objects": [asdict(replace(b, x=round(b.x, 1), y=round(b.y, 1))) for b in bodies],
        }
        return check_output(
            request, GeneratedVideo(frames=frames, fps=request.fps, metadata=metadata), self.name
        )
