"""The Physics-IQ dataset layout: descriptions, file naming, and take-1/take-2 pairing.

The official benchmark (google-deepmind/physics-IQ-benchmark) lays a dataset out as::

    DATASET/
      descriptions.csv                      # scenario, description, category, generated_video_name
      split-videos/testing-videos/{fps}FPS/{ID}_testing-videos_{fps}FPS_{perspective}_{take}_{scenario}.mp4
      split-videos/conditioning-videos/{fps}FPS/{ID}_conditioning-videos_{fps}FPS_{perspective}_{take}_{scenario}.mp4
      switch-frames/{ID}_switch-frames_anyFPS_{perspective}_{scenario}.jpg
      video-masks/real/{fps}FPS/{ID}_video-masks_{fps}FPS_{perspective}_{take}_{scenario}.mp4

where ``perspective`` is ``perspective-left|center|right``, ``take`` is ``take-1|take-2`` and ``scenario`` is
the scenario slug (``trimmed-...`` in the real benchmark). Take-1 rows come first (IDs 0001-0198 in the real
benchmark), their take-2 twins after. Models are scored on take-1 IDs; a generated video is named
``{ID}_{perspective}_{scenario}.mp4`` (any suffix may follow the ID for image-to-video).

Both published layouts are read:

* the folder names of the official README's tree (``split-videos/testing-videos``, ``conditioning-videos``),
  which the synthetic suite and the test datasets use;
* the folders the official download script and evaluator use and the Physics-IQ Verified dataset ships
  (``split-videos/testing/{fps}FPS``, ``split-videos/conditioning/{fps}FPS``; same file names).

Descriptions: a dataset holds ``descriptions.csv``, or the official prompt sets under ``descriptions/``:
``op`` (original prompts, ``descriptions/descriptions_original.csv``) and ``bpp`` (best-practice prompts,
``descriptions/best_practice/descriptions_base.csv``); ``DatasetLayout(root, descriptions="bpp")`` or a path
to one of these CSV files picks one. ``physrefine fetch-data`` writes a marker file
(:data:`DATASET_MARKER`) naming the variant (``original`` or ``verified``) and whether the download finished;
a dataset whose marker says unfinished is refused.

This module only names and parses; it reads no video.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from physics_iq.errors import DatasetError

DESCRIPTION_COLUMNS: tuple[str, ...] = ("scenario", "description", "category", "generated_video_name")
PERSPECTIVES: tuple[str, ...] = ("perspective-left", "perspective-center", "perspective-right")
CATEGORIES: tuple[str, ...] = (
    "Solid Mechanics",
    "Fluid Dynamics",
    "Optics",
    "Thermodynamics",
    "Magnetism",
)

#: The benchmark variants: the original Physics-IQ ground truth and Physics-IQ Verified (edited clips and masks).
VARIANTS: tuple[str, ...] = ("original", "verified")
#: The official prompt sets and where they live in a dataset folder (paths as in the official repository).
PROMPT_SET_FILES: dict[str, str] = {
    "op": "descriptions/descriptions_original.csv",
    "bpp": "descriptions/best_practice/descriptions_base.csv",
}
#: Written by ``physrefine fetch-data`` at the dataset root: variant, source, files and whether it finished.
DATASET_MARKER = "physrefine_dataset.json"
#: Folder names of the official benchmark folders, by variant (the official evaluator's names).
VARIANT_FOLDER_NAMES: dict[str, str] = {
    "physics-IQ-benchmark": "original",
    "physics-IQ-benchmark-verified": "verified",
}
# Split-video folders: the README tree's name first, then the download script's and Verified dataset's.
_SPLIT_DIRS: dict[str, tuple[str, str]] = {
    "testing-videos": ("testing-videos", "testing"),
    "conditioning-videos": ("conditioning-videos", "conditioning"),
}

_SCENARIO_RE = re.compile(
    r"^(?P<id>\d{4})_(?P<perspective>perspective-[a-z]+)_take-(?P<take>\d+)_(?P<scenario>[^/\\]+)\.mp4$"
)
_GENERATED_RE = re.compile(r"^(?P<id>\d{4})(?P<rest>[^/\\]*)\.mp4$")


@dataclass(frozen=True)
class Row:
    """One row of ``descriptions.csv``: one (scenario, perspective, take) video.

    Attributes:
        id: The 4-digit ID as an int (1-based).
        perspective: ``perspective-left|center|right``.
        take: 1 or 2.
        scenario: The scenario slug shared by all views and takes (e.g. ``trimmed-ball-and-block-fall``).
        description: The text description given to models.
        category: One of :data:`CATEGORIES` (or a custom one in a custom suite).
        generated_video_name: The file name a model's output must have (for take-1 rows).
    """

    id: int
    perspective: str
    take: int
    scenario: str
    description: str
    category: str
    generated_video_name: str

    @property
    def id_str(self) -> str:
        """The zero-padded ID, e.g. ``"0001"``."""
        return f"{self.id:04d}"

    @property
    def take_str(self) -> str:
        """``take-1`` or ``take-2``."""
        return f"take-{self.take}"

    @property
    def view_key(self) -> tuple[str, str]:
        """``(scenario, perspective)``: what a take-1 row shares with its take-2 twin."""
        return (self.scenario, self.perspective)

    def scenario_file_name(self) -> str:
        """The ``scenario`` column value, ``{ID}_{perspective}_{take}_{scenario}.mp4``."""
        return scenario_file_name(self.id, self.perspective, self.take, self.scenario)


def scenario_file_name(id_: int, perspective: str, take: int, scenario: str) -> str:
    """The ``scenario`` column of descriptions.csv.

    >>> scenario_file_name(1, "perspective-left", 1, "trimmed-ball-and-block-fall")
    '0001_perspective-left_take-1_trimmed-ball-and-block-fall.mp4'
    """
    return f"{id_:04d}_{perspective}_take-{take}_{scenario}.mp4"


def generated_file_name(id_: int, perspective: str, scenario: str) -> str:
    """The name the official toolkit expects for a model's video of a take-1 row.

    >>> generated_file_name(1, "perspective-left", "trimmed-ball-and-block-fall")
    '0001_perspective-left_trimmed-ball-and-block-fall.mp4'
    """
    return f"{id_:04d}_{perspective}_{scenario}.mp4"


def parse_generated_id(file_name: str) -> int | None:
    """The take-1 ID a generated video's file name starts with, or ``None`` if it is not ``{ID}....mp4``.

    >>> parse_generated_id("0007_perspective-left_trimmed-x.mp4"), parse_generated_id("notes.txt")
    (7, None)
    """
    match = _GENERATED_RE.match(file_name)
    return int(match["id"]) if match else None


def read_descriptions(path: str | Path) -> list[Row]:
    """Parse and validate a Physics-IQ ``descriptions.csv``.

    Raises:
        DatasetError: naming the file, the line and the field when the header, a scenario name, an ID or a
            generated name is not as the official layout requires, or an ID repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: descriptions.csv not found (expected the official Physics-IQ layout)")
    rows: list[Row] = []
    seen: dict[int, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in DESCRIPTION_COLUMNS if c not in header]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {missing}; expected columns {list(DESCRIPTION_COLUMNS)}, "
                f"found {list(header)}"
            )
        for line_no, record in enumerate(reader, start=2):
            name = (record["scenario"] or "").strip()
            match = _SCENARIO_RE.match(name)
            if not match:
                raise DatasetError(
                    f"{path}:{line_no}: field 'scenario' is {name!r}; expected "
                    "'{ID}_perspective-{left|center|right}_take-{N}_{scenario}.mp4'"
                )
            row = Row(
                id=int(match["id"]),
                perspective=match["perspective"],
                take=int(match["take"]),
                scenario=match["scenario"],
                description=(record["description"] or "").strip(),
                category=(record["category"] or "").strip(),
                generated_video_name=(record["generated_video_name"] or "").strip(),
            )
            if row.perspective not in PERSPECTIVES:
                raise DatasetError(
                    f"{path}:{line_no}: field 'scenario' has perspective {row.perspective!r}; "
                    f"expected one of {list(PERSPECTIVES)}"
                )
            if row.take not in (1, 2):
                raise DatasetError(f"{path}:{line_no}: field 'scenario' has take {row.take}; expected 1 or 2")
            expected_generated = generated_file_name(row.id, row.perspective, row.scenario)
            if row.generated_video_name != expected_generated:
                raise DatasetError(
                    f"{path}:{line_no}: field 'generated_video_name' is {row.generated_video_name!r}; "
                    f"expected {expected_generated!r}"
                )
            if not row.category:
                raise DatasetError(f"{path}:{line_no}: field 'category' is empty")
            if row.id in seen:
                raise DatasetError(f"{path}:{line_no}: ID {row.id_str} already used on line {seen[row.id]}")
            seen[row.id] = line_no
            rows.append(row)
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def descriptions_text(rows: Iterable[Row]) -> str:
    """The text of a ``descriptions.csv`` holding ``rows`` with the official columns, in ID order."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(DESCRIPTION_COLUMNS)
    for row in sorted(rows, key=lambda r: r.id):
        writer.writerow([row.scenario_file_name(), row.description, row.category, row.generated_video_name])
    return buffer.getvalue()


def write_descriptions(path: str | Path, rows: Iterable[Row]) -> None:
    """Write rows as a ``descriptions.csv`` (see :func:`descriptions_text`)."""
    Path(path).write_text(descriptions_text(rows), encoding="utf-8", newline="")


@dataclass(frozen=True)
class ViewPair:
    """A take-1 row (what models are scored against) and its take-2 twin (the physical variance)."""

    take1: Row
    take2: Row

    @property
    def scenario(self) -> str:
        return self.take1.scenario

    @property
    def category(self) -> str:
        return self.take1.category


def read_marker(root: str | Path) -> dict[str, Any] | None:
    """The :data:`DATASET_MARKER` of a dataset folder, or ``None`` when there is none.

    Raises:
        DatasetError: the marker is not a JSON object.
    """
    path = Path(root) / DATASET_MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path}: not valid JSON ({exc}); delete it and rerun physrefine fetch-data"
        ) from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object; delete it and rerun physrefine fetch-data")
    return data


def write_marker(root: str | Path, info: dict[str, Any]) -> Path:
    """Write (atomically) the :data:`DATASET_MARKER` of a dataset folder; ``info`` needs ``variant`` and
    ``complete``."""
    if info.get("variant") not in (*VARIANTS, "synthetic"):
        raise ValueError(f"marker variant must be one of {VARIANTS}, got {info.get('variant')!r}")
    path = Path(root) / DATASET_MARKER
    tmp = path.with_name(f".{DATASET_MARKER}.part")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def find_dataset_root(csv_path: Path) -> Path:
    """The dataset folder a descriptions CSV belongs to: the nearest folder above it holding ``split-videos``
    (or a marker), else the CSV's own folder."""
    for folder in csv_path.resolve().parents:
        if (folder / "split-videos").is_dir() or (folder / DATASET_MARKER).is_file():
            return folder
    return csv_path.parent


def descriptions_file(root: str | Path, which: str | None = None) -> Path:
    """The descriptions CSV of a dataset folder for a prompt set.

    Args:
        root: The dataset folder.
        which: ``op`` or ``bpp`` (the official prompt sets), or ``None`` for the default: ``descriptions.csv``
            if the folder has one, else the variant's default set (``bpp`` for Verified, ``op`` otherwise)
            among those present.

    Raises:
        DatasetError: an unknown set, or the file is not there (naming the paths looked at).
    """
    root = Path(root)
    if which is not None:
        if which not in PROMPT_SET_FILES:
            raise DatasetError(
                f"descriptions {which!r}: expected one of {list(PROMPT_SET_FILES)} (op or bpp)"
            )
        path = root / PROMPT_SET_FILES[which]
        if not path.is_file():
            raise DatasetError(
                f"{path}: not found; the dataset has no {which} prompt set (physrefine fetch-data writes both)"
            )
        return path
    plain = root / "descriptions.csv"
    if plain.is_file():
        return plain
    marker = read_marker(root) or {}
    variant = marker.get("variant") or VARIANT_FOLDER_NAMES.get(root.name)
    order = ("bpp", "op") if variant == "verified" else ("op", "bpp")
    for name in order:
        if (root / PROMPT_SET_FILES[name]).is_file():
            return root / PROMPT_SET_FILES[name]
    looked = [plain, *(root / PROMPT_SET_FILES[n] for n in order)]
    raise DatasetError(
        f"{root}: no descriptions found (looked for {', '.join(str(p) for p in looked)}); expected the official "
        "Physics-IQ layout (physrefine fetch-data writes the descriptions)"
    )


class DatasetLayout:
    """Paths of a Physics-IQ style dataset rooted at ``root``.

    Args:
        root: The dataset folder, or a descriptions CSV inside one (which then picks the prompts).
        descriptions: ``op`` or ``bpp`` to pick an official prompt set of the folder (see
            :func:`descriptions_file`); ``None`` takes the default.

    Raises:
        DatasetError: the folder or its descriptions are missing or malformed, the marker of an unfinished
            download is there, or ``descriptions`` is given with a CSV as ``root``.
    """

    def __init__(self, root: str | Path, descriptions: str | None = None) -> None:
        given = Path(root)
        if given.is_file() and given.suffix.lower() == ".csv":
            if descriptions is not None:
                raise DatasetError(
                    f"{given}: a descriptions file was given as the dataset; do not also pick --descriptions"
                )
            self.root = find_dataset_root(given)
            self.descriptions_path = given
        else:
            self.root = given
            if self.root.exists() and not self.root.is_dir():
                raise DatasetError(
                    f"{self.root}: is a file; expected a dataset folder holding descriptions.csv (the official "
                    "Physics-IQ layout) or a descriptions CSV inside one"
                )
            if not self.root.is_dir():
                raise DatasetError(f"{self.root}: dataset folder not found")
            self.descriptions_path = descriptions_file(self.root, descriptions)
        self.marker = read_marker(self.root)
        if self.marker is not None and not self.marker.get("complete", False):
            raise DatasetError(
                f"{self.root / DATASET_MARKER}: the download of this dataset has not finished "
                f"({self.marker.get('status') or 'incomplete'}); rerun physrefine fetch-data to complete it"
            )
        # A download restricted to some perspectives (fetch-data --views) holds only their rows' files.
        views = (self.marker or {}).get("views") or list(PERSPECTIVES)
        unknown = [v for v in views if v not in PERSPECTIVES]
        if unknown:
            raise DatasetError(
                f"{self.root / DATASET_MARKER}: unknown view(s) {unknown}; expected {PERSPECTIVES}"
            )
        self.views: tuple[str, ...] = tuple(v for v in PERSPECTIVES if v in views)
        self.rows: list[Row] = [
            r for r in read_descriptions(self.descriptions_path) if r.perspective in self.views
        ]
        if not self.rows:
            raise DatasetError(
                f"{self.descriptions_path}: no rows for the dataset's views {list(self.views)}"
            )
        self._by_id = {row.id: row for row in self.rows}

    @property
    def variant(self) -> str | None:
        """``original``, ``verified``, ``synthetic`` (the offline suite), or ``None`` when unknown.

        From the marker ``physrefine fetch-data`` writes, else the official folder name
        (``physics-IQ-benchmark[-verified]``), else the synthetic suite's manifest.
        """
        if self.marker is not None and self.marker.get("variant"):
            return str(self.marker["variant"])
        if self.root.resolve().name in VARIANT_FOLDER_NAMES:
            return VARIANT_FOLDER_NAMES[self.root.resolve().name]
        if (self.root / "synthetic_suite.json").is_file():
            return "synthetic"
        return None

    @property
    def prompt_set(self) -> str:
        """``op`` or ``bpp``: the official prompt set the descriptions are (a plain ``descriptions.csv`` is
        ``op`` unless the marker says otherwise; the official file of the original benchmark is ``op``)."""
        for name, rel in PROMPT_SET_FILES.items():
            if self.descriptions_path.resolve() == (self.root / rel).resolve():
                return name
        if "best_practice" in self.descriptions_path.parts:
            return "bpp"
        if self.marker is not None and self.marker.get("descriptions_csv") in PROMPT_SET_FILES:
            return str(self.marker["descriptions_csv"])
        return "op"

    def row(self, id_: int) -> Row:
        """The row with this ID."""
        try:
            return self._by_id[id_]
        except KeyError:
            raise DatasetError(f"{self.descriptions_path}: no row with ID {id_:04d}") from None

    def take1_rows(self) -> list[Row]:
        """Rows models are scored on, in ID order."""
        return [row for row in self.rows if row.take == 1]

    def pairs(self) -> list[ViewPair]:
        """Every take-1 row with its take-2 twin (same scenario and perspective).

        Raises:
            DatasetError: a take-1 row has no take-2 twin (or several).
        """
        twins: dict[tuple[str, str], list[Row]] = {}
        for row in self.rows:
            if row.take == 2:
                twins.setdefault(row.view_key, []).append(row)
        result = []
        for row in self.take1_rows():
            found = twins.get(row.view_key, [])
            if len(found) != 1:
                raise DatasetError(
                    f"{self.descriptions_path}: take-1 row {row.scenario_file_name()} has {len(found)} take-2 "
                    f"row(s) for {row.scenario} {row.perspective}; expected exactly one"
                )
            result.append(ViewPair(take1=row, take2=found[0]))
        return result

    def scenarios(self) -> list[str]:
        """Scenario slugs in order of first appearance."""
        return list(dict.fromkeys(row.scenario for row in self.rows))

    def fps_available(self) -> list[int]:
        """Frame rates for which testing videos exist (``split-videos/testing-videos/{fps}FPS`` or
        ``split-videos/testing/{fps}FPS``)."""
        found: set[int] = set()
        for folder in _SPLIT_DIRS["testing-videos"]:
            base = self.root / "split-videos" / folder
            if base.is_dir():
                for child in base.iterdir():
                    match = re.fullmatch(r"(\d+)FPS", child.name)
                    if child.is_dir() and match:
                        found.add(int(match[1]))
        return sorted(found)

    def split_dir(self, kind: str, fps: int) -> Path:
        """The folder of ``kind`` (``testing-videos`` or ``conditioning-videos``) clips at ``fps``: the one
        that exists among the two layouts' names (the README name when neither does)."""
        names = _SPLIT_DIRS[kind]
        for name in names:
            if (self.root / "split-videos" / name / f"{fps}FPS").is_dir():
                return self.root / "split-videos" / name / f"{fps}FPS"
        for name in names:
            if (self.root / "split-videos" / name).is_dir():
                return self.root / "split-videos" / name / f"{fps}FPS"
        return self.root / "split-videos" / names[0] / f"{fps}FPS"

    def _split_video(self, kind: str, row: Row, fps: int) -> Path:
        name = f"{row.id_str}_{kind}_{fps}FPS_{row.perspective}_{row.take_str}_{row.scenario}.mp4"
        return self.split_dir(kind, fps) / name

    def testing_video(self, row: Row, fps: int) -> Path:
        """The 5 s (or longer) clip after the switch frame that a model must predict."""
        return self._split_video("testing-videos", row, fps)

    def conditioning_video(self, row: Row, fps: int) -> Path:
        """The clip before the switch frame (the prefix given to video-to-video models)."""
        return self._split_video("conditioning-videos", row, fps)

    def switch_frame(self, row: Row) -> Path:
        """The last frame before the testing video (the conditioning image of image-to-video models)."""
        name = f"{row.id_str}_switch-frames_anyFPS_{row.perspective}_{row.scenario}.jpg"
        return self.root / "switch-frames" / name

    def real_mask_video(self, row: Row, fps: int) -> Path:
        """The official precomputed motion-mask video of a real testing video."""
        name = f"{row.id_str}_video-masks_{fps}FPS_{row.perspective}_{row.take_str}_{row.scenario}.mp4"
        return self.root / "video-masks" / "real" / f"{fps}FPS" / name

    def state_file(self, row: Row, fps: int) -> Path:
        """Ground-truth object state of a synthetic testing video (absent for the real benchmark)."""
        return self.testing_video(row, fps).with_suffix(".state.json")
