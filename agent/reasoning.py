"""The reasoning roles of the loop (predict, critique, rewrite) behind one small protocol.

Two implementations:

- :class:`VLMReasoner` renders the prompt set's templates, sends them with frames to any :class:`VLM`, and
  parses the replies into schemas. A reply that does not validate gets one repair turn in the same
  conversation (``repair.j2``: the validation error, and a request for the corrected object); if that fails
  too, :class:`~agent.schemas.ReplyParseError` is raised for the node's retry policy.
- :class:`agent.offline.OfflineReasoner` (``--vlm offline``): a motion-grounded rule-based critic, not a
  neural model.

Both see the same :class:`Scene` (description, prefix frames, measured prefix motion) so the graph does not
care which one it drives.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from agent.prompting import PromptSet
from agent.schemas import Critique, Judgement, Prediction, ReplyParseError, Rewrite, parse_reply
from agent.vlm.base import VLM, Message
from physics_iq import motion

logger = logging.getLogger(__name__)

#: Characters of the validation error a repair turn shows (pydantic's first 5 problems fit; the rest is noise).
REPAIR_ERROR_CHARS = 600


@dataclass(frozen=True)
class Scene:
    """What every role knows about the scenario being continued.

    Attributes:
        description: The scenario's text description.
        mode: ``i2v`` or ``v2v``.
        fps: Frame rate.
        num_frames: Frames to generate after the switch frame.
        prefix: ``(P, H, W, 3)`` uint8 (P == 1 for i2v).
        prefix_motion: Tracker summary of the prefix (objects referenced to the switch frame).
    """

    description: str
    mode: str
    fps: float
    num_frames: int
    prefix: np.ndarray
    prefix_motion: motion.MotionSummary

    @functools.cached_property
    def switch_blobs(self) -> list[motion.Blob]:
        """The objects of the switch frame (the reference for tracking continuations).

        Cached: every critique, tie-break and rule reads them, and detection runs on a full frame.
        """
        return motion.detect_objects(self.prefix[-1])[0]

    def attempt_motion(self, frames: np.ndarray) -> motion.MotionSummary:
        """Tracker summary of a continuation, its frame 0 being the switch frame (so names match)."""
        clip = np.concatenate([self.prefix[-1:], frames])
        return motion.summarise(clip, self.fps, reference=self.switch_blobs)


def make_scene(description: str, mode: str, fps: float, num_frames: int, prefix: np.ndarray) -> Scene:
    """Build a :class:`Scene`, tracking the prefix's objects."""
    blobs = motion.detect_objects(prefix[-1])[0]
    return Scene(description, mode, fps, num_frames, prefix, motion.summarise(prefix, fps, reference=blobs))


class Reasoner(Protocol):
    """The three reasoning roles of the loop (and the prompt set they render)."""

    name: str
    neural: bool
    prompts: PromptSet

    def predict(self, scene: Scene) -> Prediction: ...

    def critique(self, scene: Scene, prompt: str, frames: np.ndarray) -> Critique: ...

    def rewrite(self, scene: Scene, prompt: str, critique: Critique, loop_index: int) -> Rewrite: ...


def fallback_prediction(prompts: PromptSet, scene: Scene, error: str) -> Prediction:
    """The loop-1 prediction used when the reasoner's own could not be obtained (retries ran out).

    Its prompt is the prompt set's ``fallback.j2`` rendered (strictly) from the scenario description and
    mode only: no model output goes into it.

    Args:
        prompts: The run's prompt set.
        scene: The scenario.
        error: Why the prediction failed (kept in ``physics``, so the record says it is a fallback).
    """
    prompt = prompts.render("fallback", description=scene.description, mode=scene.mode)
    return Prediction(physics=f"fallback: prediction failed ({error[:300]})", prompt=prompt)


def sample_frames(frames: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """``n`` evenly spaced frames (always including the last).

    >>> [int(f[0, 0, 0]) for f in sample_frames(np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 1, 3), np.uint8), 3)]
    [0, 4, 9]
    """
    if len(frames) <= n:
        return tuple(frames)
    index = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return tuple(frames[i] for i in index)


class VLMReasoner:
    """Reasoning roles played by a vision-language model through the prompt set's templates.

    Args:
        vlm: Any :class:`VLM` backend.
        prompts: The prompt set.
        grounding: Give the model the tracker's motion summary as text (MASS-style grounding).
        n_images: Frames shown per clip.
    """

    neural = True

    def __init__(self, vlm: VLM, prompts: PromptSet, grounding: bool = True, n_images: int = 4) -> None:
        self.vlm = vlm
        self.prompts = prompts
        self.grounding = grounding
        self.n_images = n_images
        self.name = f"vlm:{getattr(vlm, 'name', type(vlm).__name__)}"

    def _ask(self, text: str, images: Sequence[np.ndarray], schema: type[Any]) -> Any:
        messages = [Message("user", text, tuple(images))]
        json_schema = schema.model_json_schema()
        reply = self.vlm.chat(messages, json_schema=json_schema)
        try:
            return parse_reply(reply.text, schema)
        except ReplyParseError as error:
            return self._repair(messages, error, schema, json_schema)

    def _repair(
        self, messages: list[Message], error: ReplyParseError, schema: type[Any], json_schema: dict[str, Any]
    ) -> Any:
        """One follow-up turn showing the model why its reply did not validate; parse what it answers.

        The whole conversation is sent again (chat APIs keep no state), images included, so a repair costs
        about one more call; the meter counts it like any other.

        Raises:
            ReplyParseError: The repaired reply does not validate either (``raw`` is that reply; the first
                one is the chained cause), left to the node's retry policy.
        """
        logger.info(
            "vlm: %s reply did not validate (%s); asking once to repair it", schema.__name__, error.reason
        )
        text = self.prompts.render("repair", schema=schema.__name__, error=error.reason[:REPAIR_ERROR_CHARS])
        conversation = [*messages, Message("assistant", error.raw), Message("user", text)]
        reply = self.vlm.chat(conversation, json_schema=json_schema)
        try:
            return parse_reply(reply.text, schema)
        except ReplyParseError as again:
            reason = f"{again.reason} (after a repair turn; the first reply: {error.reason[:300]})"
            raise ReplyParseError(schema.__name__, reason, again.raw) from error

    def predict(self, scene: Scene) -> Prediction:
        images = sample_frames(scene.prefix, self.n_images)
        text = self.prompts.render(
            "predict",
            description=scene.description,
            mode=scene.mode,
            n_images=len(images),
            grounding=scene.prefix_motion.grounding_text("before the switch frame") if self.grounding else "",
        )
        result: Prediction = self._ask(text, images, Prediction)
        return result

    def critique(self, scene: Scene, prompt: str, frames: np.ndarray) -> Critique:
        prefix_images = sample_frames(scene.prefix, max(1, self.n_images // 2))
        attempt_images = sample_frames(frames, self.n_images)
        grounding = ""
        if self.grounding:
            grounding = "\n".join(
                [
                    scene.prefix_motion.grounding_text("before the switch frame"),
                    scene.attempt_motion(frames).grounding_text("generated continuation"),
                ]
            )
        text = self.prompts.render(
            "critique",
            description=scene.description,
            prompt=prompt,
            n_prefix_images=len(prefix_images),
            n_attempt_images=len(attempt_images),
            n_frames=len(frames),
            fps=f"{scene.fps:g}",
            grounding=grounding,
        )
        result: Critique = self._ask(text, prefix_images + attempt_images, Critique)
        return result

    def rewrite(self, scene: Scene, prompt: str, critique: Critique, loop_index: int) -> Rewrite:
        text = self.prompts.render(
            "rewrite",
            description=scene.description,
            prompt=prompt,
            loop_index=loop_index,
            violations=[v.model_dump() for v in critique.violations],
            suggested_changes=critique.suggested_changes,
        )
        result: Rewrite = self._ask(text, (), Rewrite)
        return result

    def judge(self, scene: Scene, frames_a: np.ndarray, frames_b: np.ndarray) -> Judgement:
        """Which continuation is more plausible (``judge.j2``; images: A's frames, then B's)."""
        half = max(1, self.n_images // 2)
        text = self.prompts.render(
            "judge",
            description=scene.description,
            grounding=scene.prefix_motion.grounding_text("before the switch frame") if self.grounding else "",
        )
        result: Judgement = self._ask(
            text, sample_frames(frames_a, half) + sample_frames(frames_b, half), Judgement
        )
        return result
