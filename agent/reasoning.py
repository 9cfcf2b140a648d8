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
from agent.views import (
    View,
    ViewOptions,
    clip_video,
    critique_views,
    judge_views,
    prefix_views,
    to_message_kwargs,
)
from agent.vlm.base import VLM, Message, Video
from generators.base import DEFAULT_PROMPT_STYLE, PromptStyle
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

    What is perceived in the prefix (:func:`physics_iq.motion.perceive`: the objects that move or that the
    description names, the background, the floor and supports) is computed once, on first use, and shared by
    the critic, the tie-break and the grounding text.
    """

    description: str
    mode: str
    fps: float
    num_frames: int
    prefix: np.ndarray

    @functools.cached_property
    def perception(self) -> motion.Perception:
        """The switch frame's objects, background and static geometry."""
        return motion.perceive(self.prefix, self.description, self.fps)

    @functools.cached_property
    def switch_blobs(self) -> list[motion.Blob]:
        """The objects of the switch frame (the reference for tracking continuations)."""
        return list(self.perception.objects)

    @functools.cached_property
    def prefix_motion(self) -> motion.MotionSummary:
        """How the perceived objects moved up to the switch frame."""
        return motion.prefix_summary(self.prefix, self.fps, self.perception)

    def attempt_motion(self, frames: np.ndarray) -> motion.MotionSummary:
        """Tracker summary of a continuation, its frame 0 being the switch frame (so names match)."""
        clip = np.concatenate([self.prefix[-1:], frames])
        p = self.perception
        return motion.summarise(clip, self.fps, p.objects, p.labels, p.background, p.floor_y)


def make_scene(description: str, mode: str, fps: float, num_frames: int, prefix: np.ndarray) -> Scene:
    """Build a :class:`Scene` (what is in it is perceived on first use)."""
    return Scene(description, mode, fps, num_frames, prefix)


@dataclass(frozen=True)
class RewriteContext:
    """What a rewrite sees: the whole loop, not one critique.

    Attributes:
        loop_index: The loop just critiqued (1-based).
        prompt: Its prompt.
        negative_prompt: Its negative prompt (``""`` when the generator takes none).
        history: The prompts of the loops before it, oldest first.
        critiques: The usable critiques of the loop's attempts, best first (one per seed that has one).
        attempts: Attempts made in the loop (a seed whose critique failed counts, its critique does not).
    """

    loop_index: int
    prompt: str
    negative_prompt: str = ""
    history: tuple[str, ...] = ()
    critiques: tuple[Critique, ...] = ()
    attempts: int = 1


def pooled_violations(critiques: Sequence[Critique]) -> list[dict[str, Any]]:
    """Violations of all attempts grouped by object and law, most widespread first.

    A violation every attempt shows is a problem of the prompt; one that a single seed shows is more likely
    sampling noise. Each entry: ``object``, ``law``, ``severity`` (the worst seen), ``count`` (attempts
    showing it), ``when`` and ``details`` (one per attempt showing it).

    >>> from agent.schemas import Violation
    >>> v = Violation(object="ball", law="gravity", severity="high", when="generated, t = +1.00 s")
    >>> c = Critique(observations="o", expected_physics="e", violations=[v], verdict="inconsistent",
    ...              score=0.2, suggested_changes=[])
    >>> [(e["law"], e["count"]) for e in pooled_violations([c, c.model_copy(update={"violations": []})])]
    [('gravity', 1)]
    """
    order = {"high": 0, "medium": 1, "low": 2}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for critique in critiques:
        seen: set[tuple[str, str]] = set()
        for v in critique.violations:
            key = (v.object.strip().lower(), v.law.strip().lower())
            entry = groups.setdefault(
                key,
                {
                    "object": v.object,
                    "law": v.law,
                    "severity": v.severity,
                    "count": 0,
                    "when": [],
                    "details": [],
                },
            )
            if order[v.severity] < order[entry["severity"]]:
                entry["severity"] = v.severity
            if key not in seen:
                entry["count"] += 1
                seen.add(key)
            entry["when"].append(v.when)
            if v.detail:
                entry["details"].append(v.detail)
    return sorted(groups.values(), key=lambda e: (-e["count"], order[e["severity"]]))


class Reasoner(Protocol):
    """The three reasoning roles of the loop (and the prompt set they render)."""

    name: str
    neural: bool
    prompts: PromptSet

    def predict(self, scene: Scene) -> Prediction: ...

    def critique(self, scene: Scene, prompt: str, frames: np.ndarray) -> Critique: ...

    def rewrite(self, scene: Scene, context: RewriteContext) -> Rewrite: ...


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
    return Prediction(
        objects=[],
        physics=f"fallback: prediction failed ({error[:300]})",
        expected_outcome="not predicted (fallback prompt from the description)",
        prompt=prompt,
    )


class VLMReasoner:
    """Reasoning roles played by a vision-language model through the prompt set's templates.

    Every image is labelled with its role and time (:mod:`agent.views`: "prefix, t = -0.25 s", "switch
    frame, t = 0 s (last real frame)", "generated, t = +0.50 s"), the templates list the labels and ask for
    frames by them, and a critique also carries the clip as video for backends configured to send it.

    Args:
        vlm: Any :class:`VLM` backend.
        prompts: The prompt set.
        grounding: Give the model the tracker's motion summary as text (MASS-style grounding).
        views: What a critique shows (counts, contact sheet, crops of the moving region).
        prefix_images: Prefix frames shown for a prediction.
        judge_images: Frames of each continuation shown to the judge.
        style: What the driven generator reads best (prompt length, negative prompt).
        signals: Training-free verifiers (:mod:`agent.verifiers`) whose one-sentence summaries a critique
            shows the model as measurements (continuity across the switch frame, background stability ...):
            numbers a VLM cannot read off a few frames. They never see ground truth.
    """

    neural = True

    def __init__(
        self,
        vlm: VLM,
        prompts: PromptSet,
        grounding: bool = True,
        views: ViewOptions | None = None,
        prefix_images: int = 4,
        judge_images: int = 4,
        style: PromptStyle = DEFAULT_PROMPT_STYLE,
        signals: Sequence[Any] = (),
    ) -> None:
        self.vlm = vlm
        self.signals = list(signals)
        self.prompts = prompts
        self.grounding = grounding
        self.views = views or ViewOptions()
        self.prefix_images = prefix_images
        self.judge_images = judge_images
        self.style = style
        self.name = f"vlm:{getattr(vlm, 'name', type(vlm).__name__)}"

    def _style(self) -> dict[str, Any]:
        return {
            "words_min": self.style.words[0],
            "words_max": self.style.words[1],
            "negative_prompt": self.style.negative_prompt,
            "model_note": self.style.note,
        }

    def _ask(self, text: str, views: Sequence[View], schema: type[Any], video: Video | None = None) -> Any:
        messages = [Message("user", text, **to_message_kwargs(views), video=video)]
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
        views = prefix_views(scene.prefix, scene.fps, self.prefix_images)
        text = self.prompts.render(
            "predict",
            description=scene.description,
            mode=scene.mode,
            n_images=len(views),
            labels=[v.label for v in views],
            grounding=scene.prefix_motion.grounding_text("before the switch frame") if self.grounding else "",
            **self._style(),
        )
        result: Prediction = self._ask(text, views, Prediction)
        return result

    def critique(self, scene: Scene, prompt: str, frames: np.ndarray) -> Critique:
        views = critique_views(scene.prefix, frames, scene.fps, self.views)
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
            labels=[v.label for v in views],
            n_frames=len(frames),
            seconds=f"{len(frames) / scene.fps:g}",
            fps=f"{scene.fps:g}",
            grounding=grounding,
            signals=self._signals(scene, frames),
        )
        video = clip_video(scene.prefix, frames, scene.fps)
        result: Critique = self._ask(text, views, Critique, video=video)
        return result

    def _signals(self, scene: Scene, frames: np.ndarray) -> list[str]:
        """The verifiers' plain-language summaries of this attempt (a verifier that cannot run says why)."""
        if not self.signals:
            return []
        from agent.verifiers import ClipInput

        clip = ClipInput(scene.prefix, frames, scene.fps, "v2v" if scene.mode == "v2v" else "i2v")
        out = []
        for verifier in self.signals:
            result = verifier.score(clip)
            out.append(result.summary or f"{verifier.name}: {result.error or 'no measurement'}")
        return out

    def rewrite(self, scene: Scene, context: RewriteContext) -> Rewrite:
        text = self.prompts.render(
            "rewrite",
            description=scene.description,
            prompt=context.prompt,
            current_negative_prompt=context.negative_prompt,
            loop_index=context.loop_index,
            history=list(context.history),
            attempts=context.attempts,
            critiqued=len(context.critiques),
            violations=pooled_violations(context.critiques),
            observations=[c.observations for c in context.critiques],
            suggested_changes=list(dict.fromkeys(x for c in context.critiques for x in c.suggested_changes)),
            **self._style(),
        )
        result: Rewrite = self._ask(text, (), Rewrite)
        if not self.style.negative_prompt:
            result = result.model_copy(update={"negative_prompt": ""})
        return result

    def judge(self, scene: Scene, frames_a: np.ndarray, frames_b: np.ndarray) -> Judgement:
        """Which continuation is more plausible (``judge.j2``; images: the last prefix frames, the switch
        frame, A's frames, then B's at the same times)."""
        views = judge_views(scene.prefix, frames_a, frames_b, scene.fps, n=self.judge_images)
        text = self.prompts.render(
            "judge",
            description=scene.description,
            labels=[v.label for v in views],
            grounding=scene.prefix_motion.grounding_text("before the switch frame") if self.grounding else "",
        )
        result: Judgement = self._ask(text, views, Judgement)
        return result
