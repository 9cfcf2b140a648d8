"""Calibration baselines: not models, reference points that every results table should show.

- ``static``: the switch frame repeated — "nothing moves". What a generator that ignores physics entirely
  scores.
- ``take2``: the second real take of the same experiment (needs ground truth: the dataset path arrives in
  ``request.context["take2_video"]``). It scores the physical variance by construction, so it calibrates the
  evaluator end to end; it is never an honest generation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, check_output


class StaticGenerator:
    """The switch frame, repeated ``num_frames`` times."""

    name = "static"
    concurrent_safe = True  # stateless

    def __init__(self, **unused: object) -> None:
        pass

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Repeat the switch frame.

        >>> import numpy as np
        >>> from generators.base import GenerationRequest
        >>> req = GenerationRequest(prefix=np.zeros((1, 4, 6, 3), np.uint8), fps=8, prompt="", seed=0, num_frames=3)
        >>> StaticGenerator().generate(req).frames.shape
        (3, 4, 6, 3)
        """
        frames = np.repeat(request.switch_frame[None], request.num_frames, axis=0)
        return check_output(
            request, GeneratedVideo(frames, request.fps, {"generator": self.name, "neural": False}), self.name
        )


class Take2Generator:
    """Copies the take-2 testing video named in ``request.context["take2_video"]`` (calibration only)."""

    name = "take2"
    concurrent_safe = True  # reads a file per call

    def __init__(self, **unused: object) -> None:
        pass

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Read, trim and check the take-2 clip.

        Raises:
            GenerationError: no ``take2_video`` in the request context, the clip cannot be read, or it is
                too short / sized differently from the prefix.
        """
        from physics_iq.errors import VideoReadError
        from physics_iq.video import read_video

        path = request.context.get("take2_video")
        if not path:
            raise GenerationError(
                "take2: request.context['take2_video'] is missing; this baseline needs the dataset's take-2 "
                "testing video (only available where ground truth exists)"
            )
        try:
            frames, fps = read_video(Path(str(path)), max_frames=request.num_frames)
        except VideoReadError as exc:
            raise GenerationError(f"take2: {exc}") from exc
        if abs(fps - request.fps) > 1e-6 or len(frames) < request.num_frames:
            raise GenerationError(
                f"take2: {path} has {len(frames)} frames at {fps} fps; expected >= {request.num_frames} "
                f"at {request.fps} fps"
            )
        return check_output(
            request,
            GeneratedVideo(frames, request.fps, {"generator": self.name, "source": str(path)}),
            self.name,
        )
