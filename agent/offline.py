"""``--vlm offline``: the motion-grounded critic. NOT a neural model — rules over what perception measures.

It plays the three reasoning roles with :mod:`physics_iq.motion` (scene-agnostic perception: what moved in
the prefix, the things the description names, the floor and what stands on it) instead of a VLM, and it
writes what a VLM would write: ordinary sentences about named objects ("The white ball stops in mid-air at
about 1.5 s instead of falling to the table."), never measurements in a private format.

- **predict**: qualitative expectations per object — what keeps moving and which way, what the description
  says is let go (it falls; bouncy or dead by its material), what rests until something hits it, what a
  described magnet does — composed with the prompt set's ``compose.j2``.
- **critique**: compares each object's motion in the continuation with the prefix and with what should
  happen: carrying on at the switch frame, falling when let go, falling at a plausible rate for the scene's
  scale (the objects' typical sizes, :data:`physics_iq.vocabulary.TYPICAL_SIZE_M`), bouncing as its material
  or its earlier bounces say and never gaining height, not vanishing, not sinking into a support, not
  stopping in mid-air, slowing as before, not starting by itself; and, when the description announces a
  mechanical action, that something moves at all (from the official motion masks, so beads and liquids count
  too). Each check yields a :class:`~agent.schemas.Violation` and a corrected sentence for the prompt.
- **rewrite**: keeps the current prompt's sentences and replaces those about the same object and aspect
  with the critique's suggestions, then renders ``compose.j2``.

It sees only what its perception finds; in i2v mode (one frame) nothing has a measured velocity, so only the
event checks and the description's announcements apply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from agent.prompting import PromptSet
from agent.reasoning import RewriteContext, Scene
from agent.schemas import (
    Critique,
    ObjectExpectation,
    Prediction,
    Rewrite,
    Severity,
    Violation,
    generated_span,
)
from physics_iq import motion
from physics_iq.metrics import motion_masks
from physics_iq.vocabulary import SMOOTH_WORDS, TETHER_WORDS, direction, says, words

_PENALTY = {"low": 0.1, "medium": 0.3, "high": 0.8}
_RELEASE = re.compile(r"\b(?:lets? go|let go|released?|releases|drops?(?! of)|dropped|opens?|opened)\b", re.I)
# Mechanical actions set things moving at once; heating or switching something on may show nothing for
# seconds (an ice block melts slowly), so those descriptions do not make a still continuation wrong.
_ACTION = re.compile(
    r"\b(?:lets? go|let go|released?|releases|drops?(?! of)|dropped|push(?:es|ed)?|pours?|poured|slides? away|"
    r"swings?|rolls?|strikes?|knocks?|kicks?|throws?|thrown|tips? over|topples?|hits?|sends?|opened)\b",
    re.I,
)
_MAGNET = re.compile(r"\bmagnet\b", re.I)
_MAGNETIC = re.compile(r"\b(?:steel|iron|magnetic|metal)\b", re.I)
_LIKE_POLE = re.compile(r"\b(?:same|like) poles?\b|\brepel", re.I)
_MAGNET_SIDE = re.compile(r"\bmagnet\b[^.]*?\b(?:on|at) the (right|left)\b", re.I)
_SIDE_MAGNET = re.compile(r"\b(right|left)\b(?:(?!\b(?:left|right)\b)[^.])*?\bmagnet\b", re.I)
# A frame "moves" when its official motion mask (physics_iq.metrics) covers at least this share of the
# image: 0.05 % is ~30 px at 320x180, above the masks' noise on still clips and below one moving ball.
_MOVING_SHARE = 0.0005
# Restitution of the material classes (a rubber or tennis ball; clay, a bean bag): ranges, not values.
_BOUNCY = (0.5, 1.0)
_DEAD = (0.0, 0.25)
_FLOOR_WORDS = ("table", "floor", "ground", "track", "shelf", "plate")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _way(vx: float, vy: float) -> str:
    """``"to the right"``, ``"down"``... the main direction of a velocity (image axes)."""
    if abs(vx) >= abs(vy):
        return "to the right" if vx > 0 else "to the left"
    return "down" if vy > 0 else "up"


def _floor_word(description: str) -> str:
    low = description.lower()
    return next((w for w in _FLOOR_WORDS if re.search(rf"\b{w}\b", low)), "floor")


@dataclass
class _Expect:
    """What one object should do, as the offline critic understands the scene."""

    blob: motion.Blob
    kind: str  # "moving", "released", "resting", "held", "material", "reflection"
    velocity: tuple[float, float] = (0.0, 0.0)
    before: motion.ObjectMotion | None = None
    falls: bool = False
    slope: str = ""  # let go on a slope: "right" or "left", the way down
    tether: str = ""  # let go on a rod or cord: what it hangs from
    pull: str = ""  # "", "pulled:right", "pushed:left" ...
    heading: str = ""  # set moving by a tool or a hand (the description): the way it goes
    target: int = -1  # index of the object the description sends it towards
    statements: list[str] = field(default_factory=list)


@dataclass
class _View:
    """Everything the critic knows about a scene before any attempt (computed once per scene)."""

    perception: motion.Perception
    expect: list[_Expect]
    px_per_m: float | None
    floor_word: str


def _magnet(description: str) -> tuple[str, str]:
    """``("pulled" | "pushed" | "", side)`` for a described magnet acting on a steel or magnetic object.

    >>> _magnet("A strong magnet sits on the right of a table. A grabber holds a grey steel ball.")
    ('pulled', 'right')
    >>> _magnet("A magnetic puck, and a magnet at the right end facing it with the same pole.")
    ('pushed', 'right')
    >>> _magnet("A magnetic puck with a bumper at the left end and a magnet at the right end facing it with "
    ...         "the same pole.")
    ('pushed', 'right')
    """
    side = _MAGNET_SIDE.search(description) or _SIDE_MAGNET.search(description)
    if not (_MAGNET.search(description) and _MAGNETIC.search(description) and side):
        return "", ""
    where = side[1].lower()
    return ("pushed" if _LIKE_POLE.search(description) else "pulled"), where


class OfflineReasoner:
    """Motion-grounded rule-based critic (offline stand-in for a VLM; not a neural model).

    Args:
        prompts: The prompt set (its ``compose.j2`` assembles generation prompts).
        continuity_tolerance: Relative velocity change at the switch frame still counted as continuous.
        gravity_tolerance: Relative mismatch with the gravity seen before the switch that is tolerated.
        bounce_tolerance: Absolute restitution mismatch tolerated.
        rolling_loss: Share of its speed per second a ball rolling freely may lose before the critic says it
            slows down too fast (rolling resistance on a table is far below this).
    """

    name = "offline-motion-critic"
    neural = False

    def __init__(
        self,
        prompts: PromptSet,
        continuity_tolerance: float = 0.15,
        gravity_tolerance: float = 0.25,
        bounce_tolerance: float = 0.15,
        rolling_loss: float = 0.4,
    ) -> None:
        self.prompts = prompts
        self.continuity_tolerance = continuity_tolerance
        self.gravity_tolerance = gravity_tolerance
        self.bounce_tolerance = bounce_tolerance
        self.rolling_loss = rolling_loss
        self._views: dict[int, tuple[Scene, _View]] = {}

    def _compose(self, description: str, statements: list[str]) -> str:
        return self.prompts.render("compose", description=description, statements=statements)

    # ---------------------------------------------------------------------------------------------- the scene
    def view(self, scene: Scene) -> _View:
        """Perception of the scene and what each object should do (cached per scene)."""
        cached = self._views.get(id(scene))
        if cached is not None and cached[0] is scene:
            return cached[1]
        perception = scene.perception
        objects = perception.objects
        before: dict[str, motion.ObjectMotion] = {}
        if scene.mode == "v2v" and len(scene.prefix) >= 3 and objects:
            for m in scene.prefix_motion.objects:
                before[m.name] = m
        images = motion.mirror_images(objects, perception.floor_y)
        let_go = motion.released(scene.description, objects)
        pushes = motion.pushed(scene.description, objects)
        tethered_by = next((w for w in words(scene.description) if w in TETHER_WORDS), "")
        pull, side = _magnet(scene.description)
        floor_word = _floor_word(scene.description)
        support = perception.support
        expect = []
        for k, blob in enumerate(objects):
            if k in images:
                expect.append(_Expect(blob, "reflection"))
                continue
            pre = before.get(motion.track_name(k, blob))
            velocity = pre.velocity if pre is not None else (0.0, 0.0)
            col = int(min(max(round(blob.x), 0), len(support) - 1))
            supported = blob.bottom >= float(support[col]) - 4
            r = max(2, round(blob.radius))
            slope = (float(support[min(len(support) - 1, col + r)]) - float(support[max(0, col - r)])) / (
                2 * r
            )
            if blob.shape in ("grains", "fluid"):
                e = _Expect(blob, "material", velocity, pre, falls=k in let_go and blob.shape == "grains")
            elif math.hypot(*velocity) > 8:
                falls = not supported or bool(pre and pre.gravity) or _rolls_off(blob, velocity[0], support)
                e = _Expect(blob, "moving", velocity, pre, falls=falls)
            elif k in pushes and k not in let_go:
                # Set moving by a tool at about the switch frame: one frame (i2v) cannot show how fast.
                e = _Expect(blob, "pushed", velocity, pre, heading=pushes[k].heading)
            elif k in let_go and tethered_by and motion.tether(scene.prefix[-1], blob) is not None:
                e = _Expect(blob, "swinging", velocity, pre, tether=tethered_by)
            elif k in let_go and not supported:
                e = _Expect(blob, "released", velocity, pre, falls=True)
            elif k in let_go and abs(slope) > 0.15:
                e = _Expect(blob, "released", velocity, pre, slope="right" if slope > 0 else "left")
            elif supported:
                e = _Expect(blob, "resting", velocity, pre)
            else:
                e = _Expect(blob, "held", velocity, pre)
            if (
                pull
                and blob.mention >= 0
                and _MAGNETIC.search(perception.mentions[blob.mention].phrase or "")
            ) or (pull and blob.mention >= 0 and len([o for o in objects if o.mention >= 0]) == 1):
                e.pull = f"{pull}:{side}"
            if k in pushes and e.kind in ("moving", "pushed"):
                e.target = pushes[k].target
            e.statements = self._statements(e, floor_word, objects)
            expect.append(e)
        result = _View(perception, expect, motion.scale_px_per_m(objects), floor_word)
        if len(self._views) > 256:
            self._views.clear()
        self._views[id(scene)] = (scene, result)
        return result

    def _statements(self, e: _Expect, floor: str, objects: list[motion.Blob]) -> list[str]:
        """What the object should do, in the sentences the prompt gets."""
        name = e.blob.name
        out = []
        verb = "rolling" if e.blob.shape == "round" else "sliding"
        verbs = "rolls" if e.blob.shape == "round" else "slides"
        towards = f" towards {objects[e.target].name}" if e.target >= 0 else ""
        if e.kind == "moving":
            way = _way(*e.velocity)
            if way in ("up", "down"):
                out.append(f"{_cap(name)} keeps moving {way}.")
            else:
                tail = " and falls" if e.falls else ""
                out.append(f"{_cap(name)} keeps {verb} {way}{tail}.")
        elif e.kind == "pushed":
            way = e.heading if e.heading in ("up", "down") else f"to the {e.heading}"
            out.append(f"{_cap(name)} is pushed and {verbs} {way}{towards}.")
        elif e.kind == "released" and e.slope:
            out.append(f"{_cap(name)} is let go and {verbs} down the slope to the {e.slope}.")
        elif e.kind == "released":
            out.append(f"{_cap(name)} is let go and falls straight down onto the {floor}.")
        elif e.kind == "swinging":
            out.append(f"{_cap(name)} is let go and swings down on its {e.tether}.")
        elif e.kind == "resting":
            if not e.pull:
                out.append(f"{_cap(name)} stays where it is until something hits it.")
        elif e.kind == "held":
            out.append(f"{_cap(name)} stays where it is.")
        elif e.kind == "material" and e.falls:
            # Beads or sand let go run out and fall (a plural noun takes the plural verb).
            many = e.blob.noun.endswith("s")
            out.append(
                f"{_cap(name)} {'pour' if many else 'pours'} out and {'fall' if many else 'falls'} down."
            )
        if e.pull.startswith("pulled"):
            side = e.pull.split(":")[1]
            out.append(
                f"{_cap(name)} is pulled towards the magnet on the {side}, faster and faster, until it touches it."
            )
        elif e.pull.startswith("pushed"):
            side = e.pull.split(":")[1]
            back = "left" if side == "right" else "right"
            out.append(
                f"{_cap(name)} slows down before it reaches the magnet on the {side} and is pushed back to the {back}."
            )
        if e.falls or (e.before is not None and e.before.bounces):
            if e.blob.bounce == "bouncy" or (e.before is not None and (e.before.restitution or 0) > 0.5):
                out.append("It bounces a few times, each bounce lower.")
            elif e.blob.bounce == "dead":
                out.append("It does not bounce.")
        return out

    # 1. predict -------------------------------------------------------------------------------------------
    def predict(self, scene: Scene) -> Prediction:
        """Qualitative expectations from the perceived objects and the description."""
        view = self.view(scene)
        statements = [s for e in view.expect for s in e.statements]
        if statements:
            statements.append("Nothing else in the scene moves.")
        outcome = " ".join(statements) or "Nothing visibly moves."
        magnet = any(e.pull for e in view.expect)
        return Prediction(
            objects=[e.blob.name for e in view.expect if e.kind != "reflection"],
            physics="gravity, contact with the supports and friction"
            + (", magnetic force" if magnet else ""),
            expected_outcome=outcome,
            prompt=self._compose(scene.description, statements),
            expectations=_expectations(view, statements, scene),
        )

    # 2. critique ------------------------------------------------------------------------------------------
    def critique(self, scene: Scene, prompt: str, frames: np.ndarray) -> Critique:
        """Check each object's motion in the continuation against the prefix and what should happen."""
        view = self.view(scene)
        p = view.perception
        clip = np.concatenate([scene.prefix[-1:], frames])
        after = motion.summarise(clip, scene.fps, p.objects, p.labels, p.background, p.floor_y)
        moves = {m.name: m for m in after.objects}
        height, width = frames.shape[1:3]
        dt = 1.0 / scene.fps
        violations: list[Violation] = []
        changes: list[str] = []
        observed: list[str] = []
        error = 0.0  # continuous discrepancy, so that the score also ranks attempts with no violation
        have_prefix = scene.mode == "v2v" and len(scene.prefix) >= 3

        def flag(first: int, last: int, obj: str, law: str, severity: Severity, detail: str) -> None:
            # Track frame 0 is the switch frame: generated frame k is track frame k + 1.
            when = generated_span(max(0, first - 1), max(0, last - 1), scene.fps)
            sentence = _cap(detail) + ("" if detail.endswith(".") else ".")
            violations.append(Violation(object=obj, law=law, severity=severity, when=when, detail=sentence))

        g_expected = 9.81 * view.px_per_m if view.px_per_m else None
        for k, e in enumerate(view.expect):
            if e.kind in ("reflection", "material"):
                continue
            name = e.blob.name
            m = moves.get(motion.track_name(k, e.blob))
            if m is None:
                continue
            observed.append(_describe(m, e.blob, scene.fps, view.floor_word))
            support = float(p.support[int(min(max(round(e.blob.x), 0), width - 1))])
            start = m.start_velocity
            speed0 = math.hypot(*e.velocity)
            speed1 = math.hypot(*start)
            # -- carrying on at the switch frame
            jolted = False
            if have_prefix and e.kind == "moving":
                vx0, vy0 = e.velocity
                if e.before is not None and e.before.gravity and not e.before.bounces:
                    vy0 += e.before.gravity * dt  # the fit's centre is one frame before the switch
                in_flight = e.before is not None and bool(e.before.gravity)
                if e.falls and not in_flight:
                    # Rolling off an edge: gravity takes over the vertical at once; the horizontal carries on.
                    gap = abs(start[0] - vx0) / max(speed0, 20.0)
                else:
                    gap = math.hypot(start[0] - vx0, start[1] - vy0) / max(speed0, 20.0)
                error += gap
                if gap > self.continuity_tolerance:
                    way = _way(vx0, vy0)
                    verb = "rolling" if e.blob.shape == "round" else "moving"
                    if speed1 < 0.3 * speed0:
                        detail = (
                            f"right after the switch frame {name} stops dead instead of carrying on {way}"
                        )
                    elif _way(*start) != way and speed1 > 0.3 * speed0:
                        detail = f"right after the switch frame {name} moves {_way(*start)} instead of {way}"
                    elif speed1 > speed0:
                        detail = f"right after the switch frame {name} suddenly speeds up"
                    else:
                        detail = f"right after the switch frame {name} suddenly slows down"
                    flag(0, 2, name, "velocity continuity", "high" if gap > 0.6 else "medium", detail)
                    jolted = True
                    tail = " and falls" if e.falls and way not in ("up", "down") else ""
                    # A block that did not slow before the switch slides without friction to speak of.
                    steady = (
                        e.blob.shape != "round"
                        and speed1 < speed0
                        and not e.falls
                        and e.before is not None
                        and e.before.speed_change is not None
                        and e.before.speed_change > -0.1
                    )
                    tail = ", without slowing down" if steady else tail
                    changes.append(f"{_cap(name)} keeps {verb} {way} at the same speed it had{tail}.")
                    force = _force_too_soon(e.pull, (vx0, vy0), start)
                    if force:
                        changes.append(force.format(name=_cap(name)))
            # -- let go: it must fall
            if e.kind in ("released", "swinging"):
                dropped = m.lowest_y - (e.blob.bottom)
                if dropped < 3 and start[1] < 5:
                    error += 1.0
                    flag(
                        0,
                        len(frames),
                        name,
                        "gravity",
                        "high",
                        f"the description says {name} is let go, but it stays in the air",
                    )
                    changes.append(e.statements[0] if e.statements else f"{_cap(name)} is let go and falls.")
            # -- a thing resting until hit must not start by itself
            if e.kind in ("resting", "held") and not e.pull and speed1 > 15:
                error += 0.5
                flag(
                    0,
                    2,
                    name,
                    "inertia",
                    "medium",
                    f"{name} starts moving by itself right after the switch frame",
                )
                changes.append(_cap(e.statements[0]) if e.statements else f"{_cap(name)} stays where it is.")
            # -- falling at a plausible rate for the scene's scale (or as before the switch)
            xy = np.asarray(m.positions, float)  # its track: one centre per frame (checks below use it)
            drops = len(xy) > 1 and float(np.ptp(xy[:, 1])) > 2 * e.blob.radius
            # A block that tips over lowers its centre but not its bottom edge: it turns, it does not fall.
            tips = e.blob.shape == "box" and not m.lowest_y > e.blob.bottom + 4
            # Only something that falls (or is said to) has a fall rate: a puck sliding along a track has
            # small vertical wobbles a parabola fit turns into a "gravity".
            if (
                not tips
                and m.gravity is not None
                and m.gravity > 0
                and e.kind != "swinging"
                and not e.slope
                and (e.falls or e.kind == "released" or drops)
            ):
                reference = (
                    e.before.gravity
                    if e.before is not None and e.before.gravity and e.before.gravity > 20
                    else None
                )
                if reference is not None:
                    rel = m.gravity / reference
                    low, high = 1 - self.gravity_tolerance, 1 + self.gravity_tolerance
                elif g_expected is not None:
                    rel = m.gravity / g_expected
                    low, high = 0.4, 2.5  # the scale is only known to a factor of about 2
                else:
                    rel, low, high = 1.0, 0.0, math.inf
                # Inside the band the critic cannot tell (the scene's scale is uncertain): no preference there.
                error += max(
                    0.0, math.log(low) - math.log(max(rel, 1e-3)), math.log(max(rel, 1e-3)) - math.log(high)
                )
                if rel < low:
                    flag(
                        0,
                        len(frames),
                        name,
                        "gravity",
                        "high" if rel < 0.5 * low else "medium",
                        f"{name} falls too slowly, as if in slow motion",
                    )
                    changes.append(
                        f"{_cap(name)} falls quickly, speeding up all the way down like a real object."
                    )
                elif rel > high:
                    flag(0, len(frames), name, "gravity", "medium", f"{name} falls far too fast for its size")
                    changes.append(f"{_cap(name)} falls more gently.")
            # -- bounces: never higher than before; as the material or earlier bounces say
            if m.restitution is not None:
                if m.restitution > 1.05:
                    error += m.restitution - 1.0
                    flag(
                        m.bounces[0],
                        m.bounces[-1],
                        name,
                        "no energy gain in bounces",
                        "high",
                        f"{name} bounces higher than it fell from",
                    )
                    changes.append(f"{_cap(name)} bounces a few times, each bounce lower.")
                # Bounces seen before the switch give a value; a material word only a class ("rubber" is
                # bouncy), inside which the critic has no preference.
                wanted: tuple[float, float] | None = None
                if e.before is not None and e.before.restitution is not None:
                    wanted = (e.before.restitution, e.before.restitution)
                elif e.blob.bounce == "bouncy":
                    wanted = _BOUNCY
                elif e.blob.bounce == "dead":
                    wanted = _DEAD
                # Without a fitted free flight the rebound ratio comes from finite differences of two or three
                # samples around the impact, which at low frame rates miss most of the speed: no comparison.
                if wanted is not None and m.gravity is not None and m.gravity > 0:
                    low, high = wanted
                    diff = max(0.0, low - m.restitution, m.restitution - high)
                    error += diff
                    if diff > self.bounce_tolerance + 0.1 - (high - low) / 2:
                        if m.restitution < low:
                            flag(
                                m.bounces[0],
                                m.bounces[-1],
                                name,
                                "bounce height",
                                "medium",
                                f"{name} bounces much lower than it should",
                            )
                            asked_high = says(prompt, "bounce_high") or says(prompt, "bounce_very_high")
                            changes.append(
                                f"{_cap(name)} bounces very high, almost back to where it fell from, each bounce "
                                "a little lower."
                                if asked_high
                                else f"{_cap(name)} bounces high, a few times, each bounce lower."
                            )
                        else:
                            flag(
                                m.bounces[0],
                                m.bounces[-1],
                                name,
                                "bounce height",
                                "medium",
                                f"{name} bounces much higher than it should",
                            )
                            changes.append(f"{_cap(name)} bounces only a little.")
            elif (
                e.blob.bounce == "bouncy"
                and e.falls
                and m.lowest_y >= support - 4
                and m.stopped_at is not None
            ):
                error += 0.5
                flag(
                    0,
                    len(frames),
                    name,
                    "bounce height",
                    "medium",
                    f"{name} lands without bouncing although it should bounce",
                )
                changes.append(f"{_cap(name)} bounces a few times, each bounce lower.")
            # -- a rolling ball loses little speed to rolling resistance: half of it in two seconds, on a flat
            # surface, with nothing in its way, is more than any table gives (unless it slowed like that before)
            rolled = e.kind in ("moving", "pushed") and e.blob.shape == "round" and not e.pull
            slowed_before = (
                e.before is not None and e.before.speed_change is not None and e.before.speed_change < -0.2
            )
            if (
                rolled
                and e.target < 0
                and not slowed_before
                and m.speed_change is not None
                and m.speed_change < -self.rolling_loss
            ):
                error += -m.speed_change - self.rolling_loss
                flag(
                    0,
                    len(frames),
                    name,
                    "friction",
                    "medium",
                    f"{name} slows down much faster than a rolling ball does",
                )
                changes.append(f"{_cap(name)} slows down gradually.")
            # -- slowing down as before (friction)
            elif (
                have_prefix
                and e.before is not None
                and e.before.speed_change is not None
                and e.before.speed_change <= 0.05
                and m.speed_change is not None
            ):
                diff = abs(m.speed_change - e.before.speed_change)
                error += diff
                if diff > 0.25 and m.stopped_at is None:
                    if m.speed_change < e.before.speed_change:
                        flag(
                            0,
                            len(frames),
                            name,
                            "friction",
                            "low",
                            f"{name} slows down much faster than it did before the switch",
                        )
                        changes.append(f"{_cap(name)} slows down gently.")
                    else:
                        flag(
                            0,
                            len(frames),
                            name,
                            "friction",
                            "low",
                            f"{name} keeps its speed although it was slowing down before",
                        )
                        changes.append(f"{_cap(name)} slows down.")
            # -- pushed by a tool (the description): it goes the way it was pushed
            if e.kind == "pushed" and e.target < 0 and m.vanished_at is None:
                # How far it got the way it was pushed (a magnet may send it back later).
                dx, dy = (xy - xy[0]).T if len(xy) > 1 else (np.zeros(1), np.zeros(1))
                along = float(
                    np.max({"right": dx, "left": -dx, "down": dy, "up": -dy}.get(e.heading, 0.0 * dx))
                )
                if along < 2 * e.blob.radius:
                    error += 1.0
                    way = e.heading if e.heading in ("up", "down") else f"to the {e.heading}"
                    flag(
                        0,
                        len(frames),
                        name,
                        "a push sets it moving",
                        "high",
                        f"{name} hardly moves {way}, although the description says it is pushed that way",
                    )
                    verbs = "rolls" if e.blob.shape == "round" else "slides"
                    changes.append(f"{_cap(name)} is pushed and {verbs} {way} without stopping.")
            # -- sent towards something (the description): it gets there within the clip
            if e.target >= 0 and e.kind in ("pushed", "moving"):
                other = view.expect[e.target].blob
                hit = moves.get(motion.track_name(e.target, other))
                reach = e.blob.radius + other.radius + 4
                gap = float(np.min(np.hypot(xy[:, 0] - other.x, xy[:, 1] - other.y))) if len(xy) else math.inf
                moved = (
                    hit is not None
                    and len(hit.positions) > 1
                    and float(np.max(np.hypot(*(np.asarray(hit.positions, float) - hit.positions[0]).T)))
                    > max(3.0, 0.3 * other.radius)
                )
                if gap > reach and not moved:
                    error += min(1.0, (gap - reach) / max(reach, 1.0))
                    way = e.heading or _way(*e.velocity)
                    way = way if way in ("up", "down") else f"to the {way.removeprefix('to the ')}"
                    flag(
                        0,
                        len(frames),
                        name,
                        "reaches what it is sent towards",
                        "medium",
                        f"{name} never reaches {other.name}, although the description sends it there",
                    )
                    verbs = "rolls" if e.blob.shape == "round" else "slides"
                    about = " ".join(s for s in _sentences(prompt) if motion.refers(s, e.blob))
                    if e.kind == "pushed":  # how hard the push was is all one frame cannot show
                        pace = "very fast" if says(about, "fast") else "quickly"
                        changes.append(
                            f"{_cap(name)} is pushed hard and {verbs} {pace} {way} until it hits {other.name}."
                        )
                    else:  # it had its speed: what stopped it short is friction (and a jolt at the switch)
                        verb = "rolling" if e.blob.shape == "round" else "sliding"
                        same = " at the same speed it had" if jolted else ""
                        changes.append(
                            f"{_cap(name)} keeps {verb} {way}{same} without slowing down until it hits "
                            f"{other.name}."
                        )
            # -- a magnet pushing it back turns it round before it gets there
            if e.pull.startswith("pushed") and e.kind in ("moving", "pushed") and len(xy) > 2:
                side = e.pull.split(":")[1]
                sign = 1.0 if side == "right" else -1.0
                heading = (
                    e.velocity[0]
                    if math.hypot(*e.velocity) > 8
                    else {"right": 1.0, "left": -1.0}.get(e.heading or "", 0.0)
                )
                along = sign * (xy[:, 0] - xy[0, 0])
                if heading * sign > 0 and along[-1] >= float(along.max()) - e.blob.radius and along[-1] > 0:
                    error += 0.5
                    flag(
                        0,
                        len(frames),
                        name,
                        "magnetic force",
                        "medium",
                        f"{name} is never pushed back, although it moves towards a magnet facing it with the "
                        "same pole",
                    )
                    changes.append(
                        f"{_cap(name)} is pushed back strongly by the magnet on the {side} before it reaches it."
                    )
            # -- vanishing inside the frame
            if m.vanished_at is not None and not _leaves_view(m, e.blob.radius, width, height):
                error += 1.0
                flag(
                    m.vanished_at,
                    len(frames),
                    name,
                    "no vanishing",
                    "high",
                    f"{name} disappears in the middle of the frame at about {m.vanished_at * dt:.1f} s",
                )
                changes.append(f"{_cap(name)} stays in view the whole time.")
            # -- sinking into a support
            # The switch frame is real: whatever the object stands on is at least as low as its bottom there.
            floor_here = max(support, p.floor_y, e.blob.bottom)
            if m.lowest_y > floor_here + 4:
                error += (m.lowest_y - floor_here) / 10
                when = _first_below(m, e.blob, floor_here) * dt
                flag(
                    0,
                    len(frames),
                    name,
                    "no penetration",
                    "high",
                    f"{name} sinks into the {view.floor_word} at about {when:.1f} s",
                )
                changes.append(f"{_cap(name)} lands on the {view.floor_word} and never sinks into it.")
            # -- stopping without support
            if (
                m.stopped_at is not None
                and 0 < m.stopped_at < len(frames) - 2
                and e.kind in ("moving", "released")
                and not e.slope
            ):
                x, y = m.positions[m.stopped_at]
                col = int(min(max(round(x), 0), width - 1))
                if y + e.blob.radius < float(p.support[col]) - 12:
                    error += 0.5
                    flag(
                        m.stopped_at,
                        len(frames),
                        name,
                        "no stopping without contact",
                        "high",
                        f"{name} stops in mid-air at about {m.stopped_at * dt:.1f} s instead of falling to the {view.floor_word}",
                    )
                    changes.append(f"{_cap(name)} keeps falling until it reaches the {view.floor_word}.")
        # -- an announced action must set something moving (the official motion masks also see beads, liquids)
        action = _ACTION.search(scene.description)
        if action:
            masks = motion_masks(frames)
            moving = float((masks[1:].mean(axis=(1, 2)) >= _MOVING_SHARE).mean()) if len(masks) > 1 else 0.0
            if moving < 0.1:
                error += 1.0
                flag(
                    0,
                    len(frames),
                    "scene",
                    "an action sets things moving",
                    "high",
                    f"the description says it {action.group(0)}, but nothing moves afterwards",
                )
                changes.append(
                    f"Right after the switch frame things start moving as the description says ({action.group(0)})."
                )
        penalty = sum(_PENALTY[v.severity] for v in violations)
        score = float(max(0.0, min(1.0, 1.0 / (1.0 + error) - 0.1 * penalty)))
        consistent = not any(v.severity in ("medium", "high") for v in violations)
        expected = " ".join(s for e in view.expect for s in e.statements) or "Nothing visibly moves."
        return Critique(
            observations=" ".join(observed) or "Nothing visibly moves.",
            expected_physics=expected,
            violations=violations,
            verdict="consistent" if consistent else "inconsistent",
            score=round(score, 4),
            suggested_changes=list(dict.fromkeys(changes)),
        )

    # 3. rewrite -------------------------------------------------------------------------------------------
    def rewrite(self, scene: Scene, context: RewriteContext) -> Rewrite:
        """Keep the prompt's sentences, replacing those about the same object and aspect as a suggestion of
        the loop's best critique."""
        critique, prompt, loop_index = context.critiques[0], context.prompt, context.loop_index
        # What most seeds' videos get wrong is the prompt's fault; what one seed gets wrong may be chance. The
        # best critique's suggestions come first, then those most of the loop's critiques make.
        votes: dict[str, int] = {}
        for other in context.critiques:
            for change in dict.fromkeys(other.suggested_changes):
                votes[change] = votes.get(change, 0) + 1
        majority = [
            c
            for c, n in votes.items()
            if 2 * n > len(context.critiques) and c not in critique.suggested_changes
        ]
        view = self.view(scene)
        objects = view.perception.objects
        # What only some seeds got wrong still says what the prompt left open (one seed slowed down at the
        # switch frame: the prompt never said "at the same speed"); it is added where the best critique says
        # nothing about the same object and aspect.
        first = [k for k in _keys([*critique.suggested_changes, *majority], objects) if k is not None]
        minority = [
            c
            for c in votes
            if c not in critique.suggested_changes
            and c not in majority
            and (key := _keys([c], objects)[0]) is not None
            and not any(_overlaps(k, key) for k in first)
        ]
        critique = critique.model_copy(
            update={"suggested_changes": [*critique.suggested_changes, *majority, *minority]}
        )
        description = scene.description.strip()
        body = prompt[len(description) :] if prompt.startswith(description) else prompt
        kept = _sentences(body)
        replaced = 0
        for change in critique.suggested_changes:
            if change in kept:
                continue
            key = _keys([change], objects)[0]
            keys = _keys(kept, objects)
            touched = [i for i, k in enumerate(keys) if key is not None and _overlaps(k, key)]
            # A sentence that also says what a force or an impact does to the object ("slows down before the
            # magnet and is pushed back") keeps it: a suggestion about its start says nothing about that.
            same = [
                i
                for i in touched
                if key is not None and (k := keys[i]) is not None and not (k[1] - key[1]) & _OWN_ASPECTS
            ]
            if same:  # replace in place, so the prompt keeps its order and stays comparable across loops
                kept[same[0]] = change
                kept = [s for i, s in enumerate(kept) if i not in same[1:]]
                replaced += 1
            elif touched:
                kept.insert(touched[0], change)
            else:
                kept.insert(
                    max(0, len(kept) - 1) if kept and kept[-1].startswith("Nothing else") else len(kept),
                    change,
                )
        reasoning = (
            f"loop {loop_index}: applied {len(critique.suggested_changes)} suggested change(s), replacing "
            f"{replaced} sentence(s) about the same object and aspect"
        )
        return Rewrite(
            reasoning=reasoning,
            prompt=self._compose(scene.description, kept),
            expectations=_expectations(view, kept, scene),
        )


# ---------------------------------------------------------------------------------------------- helpers

#: Aspects of a sentence about an object, so that a suggestion replaces the sentence it corrects.
_ASPECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bounce", ("bounce_very_high", "bounce_high", "bounce_low", "no_bounce")),
    ("pull", ("pulled", "pushed_back")),
    ("fall speed", ("fast",)),
    ("slowing", ("keeps_speed", "slows_gently", "slows_quickly")),
    ("motion", ("falls", "still", "until_hit", "moves", "swings", "rises", "slows")),
)


#: Aspects a suggestion removes from the prompt only when it speaks of them itself.
_OWN_ASPECTS = frozenset({"pull", "bounce"})

_PRONOUN = re.compile(r"^\s*(?:it|its|they|then it|and it)\b", re.I)


def _about(sentences: list[str], objects: list[motion.Blob]) -> list[list[int]]:
    """The objects each sentence is about, "It bounces..." continuing the previous sentence's object."""
    out: list[list[int]] = []
    last: list[int] = []
    for sentence in sentences:
        who = motion.subjects(sentence, objects)
        if not who and _PRONOUN.match(sentence):
            who = last
        out.append(who)
        last = who or last
    return out


def _keys(sentences: list[str], objects: list[motion.Blob]) -> list[tuple[str, frozenset[str]] | None]:
    """``(object name, aspects)`` of each sentence, or ``None`` where it names no object or says nothing known."""
    return [
        _key(sentence, objects[who[0]].name if who else "")
        for sentence, who in zip(sentences, _about(sentences, objects), strict=True)
    ]


def _key(sentence: str, who: str) -> tuple[str, frozenset[str]] | None:
    if not who:
        return None
    aspects = set()
    for aspect, keys in _ASPECTS:
        if any(says(sentence, k) for k in keys):
            aspects.add(aspect)
    motion_keys = {k for k in dict(_ASPECTS)["motion"] if says(sentence, k)}
    if motion_keys == {"slows"} and "slowing" in aspects:
        aspects.discard("motion")  # "It slows down gradually" is about slowing, not about where it goes
    if "fall speed" in aspects and "motion" not in aspects:
        aspects.discard("fall speed")
    return (who, frozenset(aspects)) if aspects else None


def _expectations(view: _View, statements: list[str], scene: Scene) -> list[ObjectExpectation]:
    """The structured expectation of each object, read back from the prompt's own sentences (so the numbers
    say what the words say), with the critic's measurements for speed and the time to land."""
    height, width = scene.prefix.shape[1:3]
    duration = scene.num_frames / scene.fps
    g = 9.81 * view.px_per_m if view.px_per_m else None
    out = []
    subjects = _about(statements, view.perception.objects)
    smooth = bool(SMOOTH_WORDS & set(words(scene.description)))  # "a smooth track", "an icy floor"
    for k, e in enumerate(view.expect):
        if e.kind == "reflection":
            continue
        about = [s for s, who in zip(statements, subjects, strict=True) if k in who]
        text = " ".join(about)
        heading = direction(text) or (
            _way(*e.velocity).replace("to the ", "") if math.hypot(*e.velocity) > 8 else None
        )
        falls = says(text, "falls") or e.falls
        still = (says(text, "still") or e.kind in ("resting", "held")) and not falls and not e.pull
        if still:
            kind = "still"
        elif falls and not math.hypot(*e.velocity) > 8:
            kind = "falling"
        elif says(text, "swings"):
            kind = "swinging"
        elif says(text, "rises"):
            kind = "rising"
        else:
            kind = "rolling" if e.blob.shape == "round" else "sliding"
        share = math.hypot(*e.velocity) / width
        speed = "none" if still else "slow" if share < 0.15 else "medium" if share < 0.35 else "fast"
        if e.kind == "pushed" and share == 0:  # no measured speed: only the words can say
            speed = "fast" if says(text, "fast") else "slow" if says(text, "slow") else "medium"
        bounce = "high" if says(text, "bounce_high") else "low" if says(text, "bounce_low") else "none"
        friction = (
            "low" if says(text, "keeps_speed") or says(text, "slows_gently") or smooth
            else "high" if says(text, "slows_quickly")
            else "medium"
        )  # fmt: skip
        lands_at = None
        if falls and g:
            col = int(min(max(round(e.blob.x), 0), width - 1))
            drop = float(view.perception.support[col]) - e.blob.bottom
            if drop > 2:
                lands_at = round(min(1.0, math.sqrt(2 * drop / g) / duration), 3)
        out.append(
            ObjectExpectation.model_validate(
                {
                    "object": e.blob.name,
                    "x": round(min(max(e.blob.x / width, 0.0), 1.0), 3),
                    "y": round(min(max(e.blob.y / height, 0.0), 1.0), 3),
                    "motion": kind,
                    "direction": "none" if still or heading is None else heading,
                    "speed": speed,
                    "bounce": bounce,
                    "friction": friction,
                    "lands_at": lands_at,
                }
            )
        )
    return out


def _force_too_soon(pull: str, before: tuple[float, float], after: tuple[float, float]) -> str:
    """The suggestion for a thing a magnet acts on whose speed jumps at the switch frame the way the force
    pushes (a magnet's force grows as the thing comes close, so at a distance it hardly changes its speed);
    ``""`` where the jump is not the force's doing. ``{name}`` stands for the thing.

    >>> _force_too_soon("pushed:right", (90.0, 0.0), (40.0, 0.0))
    '{name} is pushed back by the magnet on the right only as it comes close to it.'
    >>> _force_too_soon("pulled:left", (-30.0, 0.0), (-80.0, 0.0))
    '{name} is pulled towards the magnet on the left gently at first, faster and faster as it comes close.'
    >>> _force_too_soon("pushed:right", (-90.0, 0.0), (-40.0, 0.0)), _force_too_soon("", (9.0, 0.0), (1.0, 0.0))
    ('', '')
    """
    if not pull:
        return ""
    kind, side = pull.split(":")
    sign = 1.0 if side == "right" else -1.0
    change = sign * (after[0] - before[0])  # > 0: towards the magnet's side
    if kind == "pushed" and sign * before[0] > 0 and change < 0:
        return f"{{name}} is pushed back by the magnet on the {side} only as it comes close to it."
    if kind == "pulled" and change > 0:
        return f"{{name}} is pulled towards the magnet on the {side} gently at first, faster and faster as it comes close."
    return ""


def _overlaps(a: tuple[str, frozenset[str]] | None, b: tuple[str, frozenset[str]]) -> bool:
    """Same object and at least one aspect in common (a suggestion replaces the sentence it corrects)."""
    return a is not None and a[0] == b[0] and bool(a[1] & b[1])


def _leaves_view(m: motion.ObjectMotion, radius: float, width: int, height: int) -> bool:
    """Whether a thing lost by the tracker was leaving the picture: where it was last seen, or where its last
    step would take it one frame later, is within its radius (and a margin) of the frame's edge.

    >>> path = [(216.0, 140.0), (250.0, 140.0), (284.0, 140.0), (284.0, 140.0)]  # lost after frame 2
    >>> m = motion.ObjectMotion("the ball", "white", (272.0, 0.0), (272.0, 0.0), None, [], None, 3, None,
    ...                         149.0, None, positions=path)
    >>> _leaves_view(m, 9.0, 320, 180), _leaves_view(m, 9.0, 640, 180)
    (True, False)
    """
    seen = m.positions[: max(1, m.vanished_at or len(m.positions))]
    if not seen:
        return False
    x, y = seen[-1]
    vx, vy = (x - seen[-2][0], y - seen[-2][1]) if len(seen) > 1 else (0.0, 0.0)
    margin = radius + 8.0
    return any(
        not (margin < px < width - margin and margin < py < height - margin)
        for px, py in ((x, y), (x + vx, y + vy))
    )


def _rolls_off(blob: motion.Blob, vx: float, support: np.ndarray, horizon: float = 1.0) -> bool:
    """Whether a thing moving along a support at ``vx`` px/s reaches an edge within ``horizon`` seconds: the
    support drops away (lower than its bottom by more than its radius) somewhere along its way.

    >>> shelf = np.array([60.0] * 40 + [100.0] * 40)   # a shelf top at row 60 ending at column 40
    >>> ball = motion.Blob(30, 55, 80, "white", (25, 50, 10, 10), 1, "round")
    >>> _rolls_off(ball, 20.0, shelf), _rolls_off(ball, -20.0, shelf), _rolls_off(ball, 2.0, shelf)
    (True, False, False)
    """
    reach = vx * horizon + math.copysign(blob.radius, vx)
    a, b = sorted((round(blob.x), round(blob.x + reach)))
    a, b = max(0, a), min(len(support), b + 1)
    return b > a and float(np.max(support[a:b])) > blob.bottom + max(4.0, blob.radius)


def _first_below(m: motion.ObjectMotion, blob: motion.Blob, level: float) -> int:
    for t, (_, y) in enumerate(m.positions):
        if y + blob.radius > level + 4:
            return t
    return 0


def _describe(m: motion.ObjectMotion, blob: motion.Blob, fps: float, floor: str) -> str:
    """One ordinary sentence on what an object does in a clip."""
    xy = np.asarray(m.positions, float)
    travel = float(np.hypot(*(xy[-1] - xy[0]))) if len(xy) else 0.0
    name = _cap(blob.name)
    if m.vanished_at is not None:
        return f"{name} disappears at about {m.vanished_at / fps:.1f} s."
    if travel < 3 and (m.stopped_at is None or m.stopped_at <= 1):
        return f"{name} stays still."
    parts = [f"{name} moves {_way(*(xy[-1] - xy[0]))}"]
    if m.bounces:
        parts.append(f"bounces {len(m.bounces)} time{'s' if len(m.bounces) > 1 else ''}")
    if m.stopped_at is not None:
        parts.append(f"comes to rest at about {m.stopped_at / fps:.1f} s")
    return ", ".join(parts) + "."


__all__ = ["OfflineReasoner", "motion"]
