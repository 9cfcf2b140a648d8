"""``--vlm offline``: the motion-grounded critic. NOT a neural model — rules over object tracks.

It plays the three reasoning roles with measurements from :mod:`physics_iq.motion` instead of a VLM:

- **predict**: qualitative expectations only (which objects move, in which direction, whether they fall and
  bounce), composed with the prompt set's ``compose.j2`` — a coarse first look, like a VLM's first guess.
- **critique**: compares the continuation's tracks with the prefix's: velocity continuity at the switch frame,
  gravity (free-flight acceleration), no penetration of the floor, no energy gain in bounces (and bounce
  height as before), no appearing/vanishing, no stopping in mid-air, slowing down as before, and, when the
  description announces a mechanical action (a release, a push, a pour), that something moves at all (from
  the official motion masks, so beads and liquids count too). Each check
  yields a :class:`~agent.schemas.Violation` and a concrete suggested sentence built from the prefix
  measurement ("the red ball moves right at 38 px/s and down at 20 px/s").
- **rewrite**: keeps the current prompt's sentences and replaces those about the same object and aspect
  with the critique's suggestions, then renders ``compose.j2``.

It cannot see anything its tracker cannot: objects without saturated colour, rotation, fluids, light. Its
measurements need a moving prefix, so in i2v mode (one frame) only the event checks (vanishing, penetration,
mid-air stops, energy gain) apply.
"""

from __future__ import annotations

import math
import re

import numpy as np

from agent.prompting import PromptSet
from agent.reasoning import RewriteContext, Scene
from agent.schemas import Critique, Prediction, Rewrite, Severity, Violation, generated_span
from physics_iq import motion
from physics_iq.metrics import motion_masks
from physics_iq.vocabulary import COLOURS

_ASPECTS = {
    "velocity": re.compile(r"\bmoves? .*px/s(?! every)|\bstarts at rest\b", re.I),
    "gravity": re.compile(r"faster by .* every second|px/s²", re.I),
    "bounce": re.compile(r"% of its impact speed|does not bounce", re.I),
    "slowing": re.compile(r"slows? down by|steady speed", re.I),
}
_PENALTY = {"low": 0.1, "medium": 0.3, "high": 0.8}
_RELEASE = re.compile(r"\b(?:lets? go|let go|released?|releases|drops?|dropped)\b", re.I)
# Mechanical actions set things moving at once; heating or switching something on may show nothing for
# seconds (an ice block melts slowly), so those descriptions do not make a still continuation wrong.
_ACTION = re.compile(
    r"\b(?:lets? go|let go|released?|releases|drops?(?! of)|dropped|push(?:es|ed)?|pours?|slides? away|swings?|"
    r"rolls?|strikes?|knocks?|kicks?|throws?|thrown|tips? over|topples?)\b",
    re.I,
)
# A magnet named in the description acts on a steel or magnetic object: it pulls it in, or, facing it with the
# same pole, pushes it back (what a VLM knows about magnets, said in the words the physics prior reads).
_MAGNET = re.compile(r"\bmagnet\b", re.I)
_MAGNETIC = re.compile(r"\b(?:steel|iron|magnetic)\b", re.I)
_LIKE_POLE = re.compile(r"\b(?:same|like) poles?\b|\brepel", re.I)
_MAGNET_SIDE = re.compile(r"\bmagnet\b[^.]*?\b(?:on|at) the (right|left)\b", re.I)
# A frame "moves" when its official motion mask (physics_iq.metrics) covers at least this share of the
# image: 0.05 % is ~30 px at 320x180, above the masks' noise on still clips and below one moving ball.
_MOVING_SHARE = 0.0005


def _magnet_statement(description: str) -> str:
    """A ``{colour}`` template of what the magnet of the description does, or ``""`` (no magnet, nothing
    magnetic, or no side given).

    >>> _magnet_statement("A strong magnet sits on the right of a table. A grabber holds a green steel ball.")
    'The {colour} ball is pulled towards the magnet on the right and speeds up until it touches it.'
    >>> _magnet_statement("A magnetic puck, and a magnet at the right end facing it with the same pole.")
    'The {colour} ball is pushed back by the magnet on the right before it touches it.'
    """
    side = _MAGNET_SIDE.search(description)
    if not (_MAGNET.search(description) and _MAGNETIC.search(description) and side):
        return ""
    where = f"the magnet on the {side[1].lower()}"
    if _LIKE_POLE.search(description):
        return f"The {{colour}} ball is pushed back by {where} before it touches it."
    return f"The {{colour}} ball is pulled towards {where} and speeds up until it touches it."


def _key(sentence: str) -> tuple[str, str] | None:
    low = sentence.lower()
    colour = next((c for c in COLOURS if re.search(rf"\b{c}\b", low)), "")
    for aspect, pattern in _ASPECTS.items():
        if pattern.search(sentence):
            return (colour, aspect)
    return None


def _velocity_sentence(colour: str, vx: float, vy: float) -> str:
    parts = []
    if abs(vx) >= 3:
        parts.append(f"{'right' if vx > 0 else 'left'} at {abs(vx):.0f} px/s")
    if abs(vy) >= 3:
        parts.append(f"{'down' if vy > 0 else 'up'} at {abs(vy):.0f} px/s")
    if not parts:  # "starts at rest", not "stays": a resting object must remain free to be hit
        return f"Right after the switch frame the {colour} ball starts at rest."
    return f"Right after the switch frame the {colour} ball moves {' and '.join(parts)}."


def _switch_objects(scene: Scene) -> tuple[set[str], dict[str, float]]:
    """The tracks that follow a reflection in the ground surface (see motion.mirror_images), and
    colour -> bottom edge (px) of the switch frame's real objects."""
    blobs = scene.switch_blobs
    reflections = motion.mirror_images(blobs, scene.prefix_motion.floor_y)
    images = {motion.track_name(i, blobs[i]) for i in reflections}
    heights = {b.colour: b.y + b.radius for i, b in enumerate(blobs) if i not in reflections}
    return images, heights


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


class OfflineReasoner:
    """Motion-grounded rule-based critic (offline stand-in for a VLM; not a neural model).

    Args:
        prompts: The prompt set (its ``compose.j2`` assembles generation prompts).
        continuity_tolerance: Relative velocity change at the switch frame still counted as continuous.
        gravity_tolerance: Relative gravity mismatch tolerated.
        bounce_tolerance: Absolute restitution mismatch tolerated.
    """

    name = "offline-motion-critic"
    neural = False

    def __init__(
        self,
        prompts: PromptSet,
        continuity_tolerance: float = 0.2,
        gravity_tolerance: float = 0.15,
        bounce_tolerance: float = 0.12,
    ) -> None:
        self.prompts = prompts
        self.continuity_tolerance = continuity_tolerance
        self.gravity_tolerance = gravity_tolerance
        self.bounce_tolerance = bounce_tolerance

    def _compose(self, description: str, statements: list[str]) -> str:
        return self.prompts.render("compose", description=description, statements=statements)

    # 1. predict -------------------------------------------------------------------------------------------
    def predict(self, scene: Scene) -> Prediction:
        """Qualitative expectations from the prefix tracks (no numbers: those come from critiques)."""
        statements = []
        objects = []
        # The description may announce a release after the switch frame ("the grabbers let go"): objects
        # resting above the floor then fall, which a still prefix alone cannot show.
        releases = bool(_RELEASE.search(scene.description))
        floor_y = scene.prefix_motion.floor_y
        images, heights = _switch_objects(scene)
        magnet = _magnet_statement(scene.description)
        for m in scene.prefix_motion.objects:
            if m.name in images:
                continue
            objects.append(f"{m.colour} ball")
            vx, vy = m.velocity
            moving = math.hypot(vx, vy) > 5
            if not moving and releases and heights.get(m.colour, floor_y) < floor_y - 6:
                statements.append(f"The {m.colour} ball is let go and falls.")
            elif moving:
                side = "right" if vx > 3 else "left" if vx < -3 else ""
                statements.append(
                    f"The {m.colour} ball keeps moving{' to the ' + side if side else ''}"
                    f"{' and falls' if m.gravity else ''}."
                )
            elif not magnet:
                statements.append(f"The {m.colour} ball rests until something hits it.")
            if magnet:
                statements.append(magnet.format(colour=m.colour))
            if m.bounces:
                statements.append(f"The {m.colour} ball bounces on the floor.")
        outcome = " ".join(statements) or "Nothing visibly moves."
        return Prediction(
            objects=objects,
            physics="gravity and contact with the floor and walls" + (", magnetic force" if magnet else ""),
            expected_outcome=outcome,
            prompt=self._compose(scene.description, statements),
        )

    # 2. critique ------------------------------------------------------------------------------------------
    def critique(self, scene: Scene, prompt: str, frames: np.ndarray) -> Critique:
        """Check the continuation's tracks against the prefix's and against basic physics."""
        after = scene.attempt_motion(frames)
        before = {m.name: m for m in scene.prefix_motion.objects}
        floor_y = scene.prefix_motion.floor_y
        height, width = frames.shape[1:3]
        violations: list[Violation] = []
        changes: list[str] = []
        error = 0.0  # continuous discrepancy, so that the score also ranks attempts with no violation
        have_prefix = scene.mode == "v2v" and len(scene.prefix) >= 3

        def flag(first: int, last: int, obj: str, law: str, severity: Severity, detail: str) -> None:
            when = generated_span(
                max(0, first - 1), max(0, last - 1), scene.fps
            )  # tracks count the switch frame
            violations.append(Violation(object=obj, law=law, severity=severity, when=when, detail=detail))

        releases = bool(_RELEASE.search(scene.description))
        images, heights = _switch_objects(scene)
        for m in after.objects:
            if m.name in images:  # a reflection in a glossy surface: it moves with its object, not by itself
                continue
            pre = before.get(m.name)
            # An object resting above the floor when the description announces a release is expected to
            # start falling: a downward start is gravity, not a velocity jump.
            released = (
                releases
                and pre is not None
                and math.hypot(*pre.velocity) <= 5
                and heights.get(m.colour, floor_y) < floor_y - 6
            )
            if released:
                sy = m.start_velocity[1]
                if sy < 5 and m.lowest_y < heights.get(m.colour, floor_y) + 3:
                    error += 1.0
                    flag(
                        0,
                        len(frames),
                        m.name,
                        "gravity",
                        "high",
                        "the description says it is let go, but it does not fall",
                    )
                    changes.append(f"The {m.colour} ball is let go and falls.")
            # -- velocity continuity at the switch frame
            if have_prefix and pre is not None and not released:
                vx0, vy0 = pre.velocity
                if pre.gravity and not (pre.bounces and pre.bounces[-1] >= len(scene.prefix) - 3):
                    vy0 += pre.gravity / scene.fps  # the fit's centre is one frame before the switch
                speed0 = math.hypot(vx0, vy0)
                dv = math.hypot(m.start_velocity[0] - vx0, m.start_velocity[1] - vy0)
                # 20 px/s floor: at 8 fps one pixel of tracking noise per frame is already 8 px/s.
                rel = dv / max(speed0, 20.0)
                error += rel
                if rel > self.continuity_tolerance:
                    severity: Severity = "high" if rel > 0.6 else "medium"
                    flag(
                        0,
                        2,
                        m.name,
                        "velocity continuity",
                        severity,
                        f"starts at ({m.start_velocity[0]:.0f}, {m.start_velocity[1]:.0f}) px/s; before the "
                        f"switch it moved at ({vx0:.0f}, {vy0:.0f}) px/s",
                    )
                    changes.append(_velocity_sentence(m.colour, vx0, vy0))
            # -- gravity in free flight
            if pre is not None and pre.gravity and pre.gravity > 20 and m.gravity is not None:
                rel = abs(m.gravity - pre.gravity) / pre.gravity
                error += rel
                if rel > self.gravity_tolerance:
                    flag(
                        0,
                        len(frames),
                        m.name,
                        "gravity",
                        "high" if rel > 0.5 else "medium",
                        f"falls with {m.gravity:.0f} px/s² but fell with {pre.gravity:.0f} px/s² before",
                    )
                    changes.append(
                        f"The {m.colour} ball falls faster by about {pre.gravity:.0f} px/s every second, "
                        "as before the switch."
                    )
            # -- bounces: no energy gain; same bounciness as before
            if m.restitution is not None:
                if m.restitution > 1.05:
                    error += m.restitution - 1.0
                    flag(
                        m.bounces[0],
                        m.bounces[-1],
                        m.name,
                        "no energy gain in bounces",
                        "high",
                        f"rebounds with {100 * m.restitution:.0f}% of its impact speed",
                    )
                if pre is not None and pre.restitution is not None:
                    diff = abs(m.restitution - pre.restitution)
                    error += diff
                    if diff > self.bounce_tolerance:
                        flag(
                            m.bounces[0],
                            m.bounces[-1],
                            m.name,
                            "bounce height",
                            "medium",
                            f"keeps {100 * m.restitution:.0f}% of its speed in bounces; before the switch "
                            f"{100 * pre.restitution:.0f}%",
                        )
                        changes.append(
                            f"The {m.colour} ball bounces back up with about {100 * pre.restitution:.0f}% of "
                            "its impact speed."
                        )
            # -- slowing down (rolling friction, drag) as before
            # Skipped when the prefix shows the object speeding up sideways: something (a cue, a push) was
            # still driving it, so the prefix says nothing about friction after the switch.
            if (
                have_prefix
                and pre is not None
                and pre.speed_change is not None
                and pre.speed_change <= 0.05
                and m.speed_change is not None
            ):
                diff = abs(m.speed_change - pre.speed_change)
                error += diff
                if diff > 0.15 and m.stopped_at is None:
                    flag(
                        0,
                        len(frames),
                        m.name,
                        "friction",
                        "low",
                        f"changes sideways speed by {100 * m.speed_change:.0f}%/s; before {100 * pre.speed_change:.0f}%/s",
                    )
                    if pre.speed_change < -0.03:
                        changes.append(
                            f"The {m.colour} ball slows down by about {100 * -pre.speed_change:.0f}% every second."
                        )
                    else:
                        changes.append(f"The {m.colour} ball keeps moving at a steady speed.")
            # -- appearing / vanishing inside the frame
            if m.vanished_at is not None:
                x, y = m.positions[max(0, m.vanished_at - 1)]
                inside = 8 < x < width - 8 and 8 < y < height - 8
                if inside:
                    error += 1.0
                    flag(
                        m.vanished_at,
                        len(frames),
                        m.name,
                        "no vanishing",
                        "high",
                        f"disappears at frame {m.vanished_at} inside the frame",
                    )
                    changes.append(f"The {m.colour} ball stays visible the whole time.")
            # -- penetration of the floor
            if m.lowest_y > floor_y + 3:
                error += (m.lowest_y - floor_y) / 10
                flag(
                    0,
                    len(frames),
                    m.name,
                    "no penetration",
                    "high",
                    f"its bottom reaches y={m.lowest_y:.0f} px, below the floor at y={floor_y:.0f} px",
                )
                changes.append(f"The {m.colour} ball never sinks into the floor.")
            # -- stopping without support
            if m.stopped_at is not None and m.stopped_at < len(frames) - 2:
                x, y = m.positions[m.stopped_at]
                if y < floor_y - 15 and (pre is None or pre.gravity):  # 15 px: clearly above any resting ball
                    error += 0.5
                    flag(
                        m.stopped_at,
                        len(frames),
                        m.name,
                        "no stopping without contact",
                        "high",
                        f"stops in mid-air at y={y:.0f} px",
                    )
                    changes.append(f"The {m.colour} ball keeps falling until it reaches the floor.")
        # -- an announced action must set something moving (seen in the motion masks, so also for what
        # the tracker cannot follow: beads, liquids, dominoes)
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
                    f"the description says '{action.group(0)}', but nothing moves in "
                    f"{100 * (1 - moving):.0f}% of the frames",
                )
                changes.append(
                    f"As described ({action.group(0)}), things visibly start moving right after the switch frame."
                )
        extra = {m.name for m in after.objects} - set(before)
        for name in sorted(extra):
            flag(0, len(frames), name, "no appearing", "high", "present after the switch but not before")
        penalty = sum(_PENALTY[v.severity] for v in violations)
        score = float(max(0.0, min(1.0, 1.0 / (1.0 + error) - 0.1 * penalty)))
        consistent = not any(v.severity in ("medium", "high") for v in violations)
        return Critique(
            observations=after.grounding_text("generated continuation") or "No object is tracked.",
            expected_physics=scene.prefix_motion.grounding_text("before the switch frame")
            or "No object is tracked before the switch frame.",
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
        description = scene.description.strip()
        body = prompt[len(description) :] if prompt.startswith(description) else prompt
        kept = _sentences(body)
        replaced = []
        for change in critique.suggested_changes:
            if change in kept:
                continue
            key = _key(change)
            same = [i for i, s in enumerate(kept) if key is not None and _key(s) == key]
            if same:  # replace in place, so the prompt keeps its order and stays comparable across loops
                kept[same[0]] = change
                kept = [s for i, s in enumerate(kept) if i not in same[1:]]
                replaced.append(key)
            else:
                kept.append(change)
        reasoning = (
            f"loop {loop_index}: applied {len(critique.suggested_changes)} suggested change(s), replacing "
            f"{len(replaced)} sentence(s) about the same object and aspect"
        )
        return Rewrite(reasoning=reasoning, prompt=self._compose(scene.description, kept))


__all__ = ["OfflineReasoner", "motion"]
