"""Generators that live outside physrefine: a folder of precomputed videos, or a command you run.

* ``folder`` -- for closed APIs (Sora, Veo, Runway, ...): generate elsewhere, drop the files in a folder, and
  physrefine critiques, rewrites and scores them. For a request the first existing file among these is used
  (``ID`` = the take-1 row's 4-digit ID from ``request.context["take1_id"]``, ``HASH`` = first 12 hex digits
  of the SHA-256 of the prompt, so every refined prompt gets its own file):

  1. ``{ID}_{HASH}_seed{SEED}.mp4`` -- this prompt and seed;
  2. ``{ID}_seed{SEED}.mp4`` -- any prompt, this seed;
  3. ``{ID}.mp4`` -- one video per scenario.

  When none exists, the request (prompt, seed, expected names, size, fps) is written to
  ``requests_dir/{ID}_{HASH}_seed{SEED}.json`` (never overwriting) so it can be generated, and the attempt
  fails with a message naming the files looked for.
* ``command`` -- any program: the template is split like a shell line (``shlex``) into an argument list,
  each argument rendered with jinja2 (strict: an unknown ``{{ name }}`` is an error) and run **without a
  shell**, with a timeout. Variables: ``image`` (switch frame PNG), ``prefix_video`` (prefix MP4), ``output``
  (where the program must write its video), ``prompt``, ``negative_prompt``, ``seed``, ``num_frames``,
  ``fps``, ``seconds``, ``width``, ``height``, ``take1_id``.

Either way the video is brought to the output contract: its own fps resampled to the request's (official
linear blend), an optional leading switch frame dropped, cut to ``num_frames`` (too short is an error), and
resized to the request's size. Input files are only ever read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import cv2
import jinja2
import jinja2.meta
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, check_output
from generators.video_rules import resize_frames
from physics_iq.errors import VideoReadError
from physics_iq.registry import BackendOptionError
from physics_iq.video import read_video, resample_fps, write_video

logger = logging.getLogger(__name__)


def prompt_hash(prompt: str) -> str:
    """First 12 hex digits of the prompt's SHA-256, used in file names.

    >>> prompt_hash("the ball falls")
    'd430dc946e53'
    """
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]


def fit_to_request(
    frames: np.ndarray, fps: float, request: GenerationRequest, includes_switch_frame: bool, source: str
) -> np.ndarray:
    """Bring a decoded clip to exactly ``request.num_frames`` at the request's fps and size.

    Raises:
        GenerationError: The clip is too short for the requested duration.
    """
    if includes_switch_frame:
        frames = frames[1:]
    if abs(fps - request.fps) > 1e-6:
        frames = resample_fps(frames, fps, request.fps)
    if len(frames) < request.num_frames:
        raise GenerationError(
            f"{source}: {len(frames)} frames at {request.fps} fps after the switch frame, need "
            f"{request.num_frames} ({request.num_frames / request.fps:.2f} s)"
        )
    return resize_frames(np.ascontiguousarray(frames[: request.num_frames]), request.height, request.width)


def _parse(options_cls: type[BaseModel], who: str, values: dict[str, Any]) -> Any:
    try:
        return options_cls(**{key: value for key, value in values.items() if value is not None})
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BackendOptionError(
            f"{who}: {problems} (known options: {', '.join(options_cls.model_fields)})"
        ) from None


def _take1_id(request: GenerationRequest, who: str) -> int:
    take1_id = request.context.get("take1_id")
    if not isinstance(take1_id, int):
        raise GenerationError(
            f"{who}: request.context['take1_id'] (an int) is needed to name files, got {take1_id!r}"
        )
    return take1_id


class FolderOptions(BaseModel):
    """Options of :class:`FolderGenerator`.

    Attributes:
        model: The folder of precomputed videos (``--model PATH``).
        requests_dir: Where to write a JSON request for each missing video (unset: don't).
        includes_switch_frame: The videos start with the switch frame (drop it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    requests_dir: str | None = None
    includes_switch_frame: bool = False


class FolderGenerator:
    """Precomputed videos from a folder (closed APIs); see the module docstring for the naming."""

    name = "folder"
    concurrent_safe = True  # reads a file per call

    def __init__(self, model: str | None = None, **options: Any) -> None:
        self.options = _parse(FolderOptions, self.name, {"model": model, **options})
        self.folder = Path(self.options.model)
        if not self.folder.is_dir():
            raise BackendOptionError(f"{self.name}: {self.folder} is not a folder of videos")

    def candidates(self, request: GenerationRequest) -> list[Path]:
        """The files looked for, in order of preference."""
        take1_id = _take1_id(request, self.name)
        stem = f"{take1_id:04d}"
        return [
            self.folder / f"{stem}_{prompt_hash(request.prompt)}_seed{request.seed}.mp4",
            self.folder / f"{stem}_seed{request.seed}.mp4",
            self.folder / f"{stem}.mp4",
        ]

    def _write_request(self, request: GenerationRequest, wanted: list[Path]) -> Path | None:
        if self.options.requests_dir is None:
            return None
        folder = Path(self.options.requests_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (wanted[0].stem + ".json")
        if not path.exists():
            record = {
                "take1_id": request.context.get("take1_id"),
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt,
                "seed": request.seed,
                "fps": request.fps,
                "num_frames": request.num_frames,
                "width": request.width,
                "height": request.height,
                "save_as": str(wanted[0]),
            }
            path.write_text(json.dumps(record, indent=2), encoding="utf-8")
        return path

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Read the matching precomputed video and fit it to the request."""
        wanted = self.candidates(request)
        found = next((path for path in wanted if path.is_file()), None)
        if found is None:
            written = self._write_request(request, wanted)
            note = f"; request written to {written}" if written else ""
            raise GenerationError(
                f"{self.name}: no precomputed video for take-1 ID {request.context.get('take1_id')} seed "
                f"{request.seed}; looked for {', '.join(p.name for p in wanted)} in {self.folder}{note}"
            )
        try:
            frames, fps = read_video(found)
        except VideoReadError as exc:
            raise GenerationError(f"{self.name}: {exc}") from exc
        out = fit_to_request(frames, fps, request, self.options.includes_switch_frame, str(found))
        metadata = {
            "generator": self.name,
            "source": str(found),
            "source_fps": fps,
            "source_frames": len(frames),
        }
        return check_output(request, GeneratedVideo(out, request.fps, metadata), self.name)


class CommandOptions(BaseModel):
    """Options of :class:`CommandGenerator`.

    Attributes:
        command: The template, e.g. ``my-gen --image {{ image }} --prompt {{ prompt }} --out {{ output }}``.
        timeout: Seconds before the program is killed.
        includes_switch_frame: The program's video starts with the switch frame (drop it).
        workdir: Parent of the per-call temporary folders (system temp when unset).
        model: Passed to the template as ``model`` (optional).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1)
    timeout: float = Field(3600.0, gt=0)
    includes_switch_frame: bool = False
    workdir: str | None = None
    model: str | None = None


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
#: The variables a command template may use (see :meth:`CommandGenerator.generate`).
TEMPLATE_VARIABLES = (
    "image",
    "prefix_video",
    "output",
    "prompt",
    "negative_prompt",
    "seed",
    "num_frames",
    "fps",
    "seconds",
    "width",
    "height",
    "take1_id",
    "model",
)


class CommandGenerator:
    """Runs an external program per request, as an argument list (never a shell), with a timeout."""

    name = "command"
    #: One process per call; a program that shares a device with others must serialise itself.
    concurrent_safe = True

    def __init__(self, model: str | None = None, **options: Any) -> None:
        self.options = _parse(CommandOptions, self.name, {"model": model, **options})
        # Close up spaces inside {{ ... }} first, so that shlex keeps each placeholder within one argument.
        compact = re.sub(
            r"\{\{(.*?)\}\}", lambda m: "{{" + "".join(m.group(1).split()) + "}}", self.options.command
        )
        try:
            self._templates = [_ENV.from_string(arg) for arg in shlex.split(compact)]
        except (ValueError, jinja2.TemplateSyntaxError) as exc:
            raise BackendOptionError(
                f"{self.name}: cannot parse command template {self.options.command!r}: {exc}"
            ) from exc
        if not self._templates:
            raise BackendOptionError(f"{self.name}: empty command template")
        # A misspelt variable is an option error: refuse it here, not at the first request.
        used = set().union(
            *(jinja2.meta.find_undeclared_variables(_ENV.parse(a)) for a in shlex.split(compact))
        )
        unknown = sorted(used - set(TEMPLATE_VARIABLES))
        if unknown:
            raise BackendOptionError(
                f"{self.name}: command template: {', '.join(repr(u) for u in unknown)} is undefined; "
                f"available: {', '.join(sorted(TEMPLATE_VARIABLES))}"
            )

    def arguments(self, variables: dict[str, Any]) -> list[str]:
        """The rendered argument list.

        Raises:
            GenerationError: The template could not be rendered for this request (e.g. an attribute of a
                variable that this request's value lacks; unknown variables are refused by the constructor).
        """
        try:
            return [template.render(**variables) for template in self._templates]
        except jinja2.UndefinedError as exc:
            raise GenerationError(
                f"{self.name}: command template: {exc}; available: {', '.join(sorted(variables))}"
            ) from exc

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Write the inputs to a temporary folder, run the program, read and fit its output video."""
        opts = self.options
        with tempfile.TemporaryDirectory(prefix="physrefine-cmd-", dir=opts.workdir) as tmp:
            work = Path(tmp)
            image = work / "switch_frame.png"
            cv2.imwrite(str(image), cv2.cvtColor(request.switch_frame, cv2.COLOR_RGB2BGR))
            prefix_video = work / "prefix.mp4"
            write_video(prefix_video, request.prefix, request.fps)
            output = work / "output.mp4"
            variables = {
                "image": str(image),
                "prefix_video": str(prefix_video),
                "output": str(output),
                "prompt": request.prompt,
                "negative_prompt": request.negative_prompt,
                "seed": request.seed,
                "num_frames": request.num_frames,
                "fps": request.fps,
                "seconds": request.num_frames / request.fps,
                "width": request.width,
                "height": request.height,
                "take1_id": request.context.get("take1_id", ""),
                "model": opts.model or "",
            }
            args = self.arguments(variables)
            logger.info("%s: running %s (timeout %.0f s)", self.name, args[0], opts.timeout)
            try:
                done = subprocess.run(
                    args, capture_output=True, text=True, timeout=opts.timeout, check=False, cwd=work
                )
            except FileNotFoundError as exc:
                raise GenerationError(f"{self.name}: program not found: {args[0]!r}") from exc
            except subprocess.TimeoutExpired as exc:
                raise GenerationError(f"{self.name}: {args[0]!r} timed out after {opts.timeout} s") from exc
            if done.returncode != 0:
                tail = (done.stderr or done.stdout or "").strip()[-800:]
                raise GenerationError(
                    f"{self.name}: {args[0]!r} exited with status {done.returncode}: {tail}"
                )
            if not output.is_file():
                raise GenerationError(
                    f"{self.name}: {args[0]!r} exited 0 but wrote no video to {{{{ output }}}}"
                )
            try:
                frames, fps = read_video(output)
            except VideoReadError as exc:
                raise GenerationError(f"{self.name}: {exc}") from exc
        out = fit_to_request(frames, fps, request, opts.includes_switch_frame, f"{self.name} output")
        metadata = {
            "generator": self.name,
            "program": args[0],
            "source_fps": fps,
            "source_frames": len(frames),
        }
        return check_output(request, GeneratedVideo(out, request.fps, metadata), self.name)
