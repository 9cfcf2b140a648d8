"""Download the Physics-IQ benchmark data: the original set from its public bucket, Physics-IQ Verified from
the Hugging Face Hub. Resumable, checked against the expected layout and file count, never mistaken for
complete when it is not.

Sources (as the official repository google-deepmind/physics-IQ-benchmark documents them):

* ``original``: the public Google Cloud Storage bucket ``physics-iq-benchmark`` that the official
  ``download_physics_iq_data.py`` syncs with ``gcloud storage rsync``. Objects are listed through the bucket's
  JSON API (name, size and MD5 of each) and fetched over HTTPS with ``Range`` requests, so an interrupted file
  resumes where it stopped; every downloaded file is checked against the listed size and MD5.
* ``verified``: the gated dataset ``Anates-Labs-Research/Physics-IQ-Verified`` on the Hugging Face Hub
  (access requests are approved automatically), through ``huggingface_hub`` (``pip install
  'physrefine[data]'``). The token is the library's own: ``HF_TOKEN`` in the environment or ``hf auth login``;
  physrefine never takes one as an option. The file list and sizes come from the Hub's tree listing;
  ``hf_hub_download`` resumes interrupted files itself.

What is fetched per frame rate: ``split-videos/testing`` and ``split-videos/conditioning`` (the split clips),
``video-masks/real`` (the official real masks, used by compat mode) and ``switch-frames``. The 30 FPS set
the official script always adds (to resample other rates) is fetched only when asked for.

Layout check: the descriptions (``op``, shipped with physrefine; for Verified also ``bpp``, the official
best-practice prompts at a pinned commit) name every file the benchmark has: a testing clip per row (both
takes), a switch frame per take-1 row, and a conditioning clip and a real mask per row when the source has
that part at all. The listing is checked against them before anything is downloaded, and the folder after.

A marker (:data:`physics_iq.layout.DATASET_MARKER`) is written first with ``complete: false`` and rewritten
with ``complete: true`` only once every expected file is in place with its listed size (and MD5 for the
original set); :class:`~physics_iq.layout.DatasetLayout` refuses a dataset whose marker says unfinished.
Files are written under a temporary name and renamed only when whole, and an existing file of the wrong size
is reported, never overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from physics_iq.errors import DatasetError, PhysicsIQError
from physics_iq.layout import (
    DATASET_MARKER,
    PERSPECTIVES,
    PROMPT_SET_FILES,
    Row,
    read_descriptions,
    read_marker,
    write_marker,
)

logger = logging.getLogger(__name__)

GCS_BUCKET = "physics-iq-benchmark"
GCS_BASE_URL = "https://storage.googleapis.com"
HF_REPO_ID = "Anates-Labs-Research/Physics-IQ-Verified"
#: The official repository commit the best-practice prompts are read from (descriptions_base.csv).
DESCRIPTIONS_COMMIT = "edb305220cd4e91650c07a75928235fc6ede7c7c"
DESCRIPTIONS_BASE_URL = (
    f"https://raw.githubusercontent.com/google-deepmind/physics-IQ-benchmark/{DESCRIPTIONS_COMMIT}"
)
#: Frame rates the benchmark ships precomputed.
FPS_AVAILABLE: tuple[int, ...] = (8, 16, 24, 30)
_CHUNK = 1 << 20
_RETRIES = 3

# Remote folder (under the bucket or repo root) -> the part it holds. The Verified README names the split
# folders both ways, so both are accepted.
_PART_RE = re.compile(
    r"^(?P<dir>split-videos/(?P<split>testing|testing-videos|conditioning|conditioning-videos)|video-masks/real)"
    r"/(?P<fps>\d+)FPS/(?P<file>[^/]+\.mp4)$"
)
_SWITCH_RE = re.compile(r"^switch-frames/(?P<file>[^/]+\.jpg)$")


class FetchError(PhysicsIQError):
    """A download cannot be made or finished (listing, network, size or checksum, layout, access)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of the source: its path relative to the dataset root, size and (when known) MD5."""

    path: str
    size: int
    md5: str | None = None


class FetchProgress:
    """Callbacks a download reports to (the CLI draws a rich progress bar from them); no-ops by default."""

    def start(self, files: int, total_bytes: int) -> None:
        """The download of ``files`` files (``total_bytes`` bytes, already present ones included) begins."""

    def advance(self, n_bytes: int) -> None:
        """``n_bytes`` more bytes are in place."""

    def file_done(self, path: str) -> None:
        """A file is complete."""


@dataclass
class FetchResult:
    """What a fetch did.

    Attributes:
        root: The dataset folder.
        variant: ``original`` or ``verified``.
        files: Files of the dataset now present (all checked).
        downloaded: Files downloaded by this call.
        present: Files already there with the right size.
        parts: Part -> file count (``absent`` for an optional part the source does not have).
        marker: The marker written.
    """

    root: Path
    variant: str
    files: int = 0
    downloaded: int = 0
    present: int = 0
    parts: dict[str, Any] = field(default_factory=dict)
    marker: dict[str, Any] = field(default_factory=dict)


# -- what the benchmark holds ---------------------------------------------------------------------------------
def packaged_descriptions() -> str:
    """The official original descriptions (``descriptions_original.csv``, 396 rows) shipped with physrefine."""
    return (
        resources.files("physics_iq").joinpath("data/physics_iq_descriptions.csv").read_text(encoding="utf-8")
    )


def _view_of(file_name: str) -> str | None:
    match = re.search(r"_(perspective-[a-z]+)_", file_name)
    return match[1] if match else None


def select(paths: Iterable[RemoteFile], fps: Sequence[int], views: Sequence[str]) -> list[RemoteFile]:
    """The source files physrefine uses at these frame rates and views (see the module docstring).

    >>> files = [RemoteFile("split-videos/testing/8FPS/0001_testing-videos_8FPS_perspective-left_take-1_x.mp4", 1),
    ...          RemoteFile("split-videos/testing/30FPS/0001_testing-videos_30FPS_perspective-left_take-1_x.mp4", 1),
    ...          RemoteFile("switch-frames/0002_switch-frames_anyFPS_perspective-center_x.jpg", 1),
    ...          RemoteFile("full-videos/take-1/8FPS/0001_full-videos_8FPS_perspective-left_take-1_x.mp4", 1)]
    >>> [f.path.split("/")[0] for f in select(files, [8], ["perspective-left", "perspective-center"])]
    ['split-videos', 'switch-frames']
    """
    out = []
    for item in paths:
        match = _PART_RE.match(item.path)
        if match:
            if int(match["fps"]) in fps and _view_of(match["file"]) in views:
                out.append(item)
            continue
        match = _SWITCH_RE.match(item.path)
        if match and _view_of(match["file"]) in views:
            out.append(item)
    return out


def _part(path: str) -> str:
    match = _PART_RE.match(path)
    if match:
        split = match["split"]
        if split:
            return "testing" if split.startswith("testing") else "conditioning"
        return "masks"
    return "switch-frames"


def expected_names(rows: Sequence[Row], fps: Sequence[int]) -> dict[str, set[str]]:
    """Part -> the file names the benchmark has for these rows and frame rates (official naming)."""
    names: dict[str, set[str]] = {
        "testing": set(),
        "conditioning": set(),
        "masks": set(),
        "switch-frames": set(),
    }
    for row in rows:
        tail = f"{row.perspective}_{row.take_str}_{row.scenario}.mp4"
        for rate in fps:
            names["testing"].add(f"{row.id_str}_testing-videos_{rate}FPS_{tail}")
            names["conditioning"].add(f"{row.id_str}_conditioning-videos_{rate}FPS_{tail}")
            names["masks"].add(f"{row.id_str}_video-masks_{rate}FPS_{tail}")
        if row.take == 1:
            names["switch-frames"].add(
                f"{row.id_str}_switch-frames_anyFPS_{row.perspective}_{row.scenario}.jpg"
            )
    return names


#: Parts every download must hold; the others are required only when the source has them at all.
REQUIRED_PARTS: tuple[str, ...] = ("testing", "switch-frames")


def check_listing(files: Sequence[RemoteFile], rows: Sequence[Row], fps: Sequence[int]) -> dict[str, Any]:
    """Check a source listing against the files the descriptions name. Returns part -> count or ``absent``.

    Raises:
        FetchError: a required part, or a present optional part, misses files (listed).
    """
    expected = expected_names(rows, fps)
    listed: dict[str, set[str]] = {part: set() for part in expected}
    for item in files:
        listed[_part(item.path)].add(item.path.rsplit("/", 1)[1])
    problems = []
    parts: dict[str, Any] = {}
    for part, names in expected.items():
        if part not in REQUIRED_PARTS and not listed[part]:
            parts[part] = "absent"
            continue
        missing = sorted(names - listed[part])
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            problems.append(
                f"{part}: {len(missing)} of {len(names)} expected file(s) not in the source: {shown}"
            )
        parts[part] = len(listed[part])
    if problems:
        raise FetchError(
            "the source does not hold the expected layout:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return parts


# -- HTTP (the original set) ------------------------------------------------------------------------------------
def _get(url: str, headers: dict[str, str] | None = None, timeout: float = 60.0) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "physrefine", **(headers or {})})
    return urllib.request.urlopen(request, timeout=timeout)


def list_gcs(
    prefixes: Sequence[str], *, base_url: str = GCS_BASE_URL, bucket: str = GCS_BUCKET
) -> list[RemoteFile]:
    """Every object under ``prefixes`` of a public bucket, through the JSON API (paged), with size and MD5.

    Raises:
        FetchError: the listing cannot be read.
    """
    out = []
    for prefix in prefixes:
        token = ""
        while True:
            query = {"prefix": prefix, "fields": "items(name,size,md5Hash),nextPageToken"}
            if token:
                query["pageToken"] = token
            url = f"{base_url}/storage/v1/b/{bucket}/o?{urllib.parse.urlencode(query)}"
            try:
                with _get(url) as response:
                    data = json.loads(response.read().decode("utf-8"))
            except (urllib.error.URLError, OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
                raise FetchError(f"cannot list gs://{bucket}/{prefix} ({url}): {exc}") from exc
            for item in data.get("items", []):
                md5 = base64.b64decode(item["md5Hash"]).hex() if item.get("md5Hash") else None
                out.append(RemoteFile(item["name"], int(item["size"]), md5))
            token = data.get("nextPageToken") or ""
            if not token:
                break
    return out


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: Path, item: RemoteFile, progress: FetchProgress) -> None:
    """Download one file to ``dest`` through ``dest.part``, resuming a partial ``.part`` with a ``Range``
    request (and retrying a dropped connection from where it stopped); renamed into place only once its
    size and MD5 match the listing.

    Raises:
        FetchError: the file cannot be fetched whole, or its size or MD5 differ (the ``.part`` is removed
            when it is wrong, kept when it is only incomplete).
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, _RETRIES + 1):
        have = part.stat().st_size if part.is_file() else 0
        if have > item.size:
            part.unlink()
            have = 0
        if have < item.size:
            try:
                with _get(url, {"Range": f"bytes={have}-"} if have else None) as response:
                    if have and response.status != 206:  # the server ignored the range: start over
                        part.unlink()
                        progress.advance(-have)
                        have = 0
                    with part.open("ab") as handle:
                        while True:
                            block = response.read(_CHUNK)
                            if not block:
                                break
                            handle.write(block)
                            progress.advance(len(block))
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                # A dropped connection mid-body is http.client.IncompleteRead (not an OSError).
                if attempt == _RETRIES:
                    raise FetchError(
                        f"{item.path}: download interrupted after {attempt} attempts ({exc}); rerun the same "
                        "command to resume"
                    ) from exc
                logger.info("%s: %s; resuming (attempt %d)", item.path, exc, attempt + 1)
                time.sleep(0.5 * attempt)
                continue
        got = part.stat().st_size if part.is_file() else 0
        if got < item.size and attempt < _RETRIES:
            continue  # the connection closed early without an error: resume
        if got != item.size:
            raise FetchError(
                f"{item.path}: got {got} of {item.size} bytes after {attempt} attempts; rerun the same command "
                "to resume"
            )
        if item.md5 is not None and _md5(part) != item.md5:
            part.unlink()
            raise FetchError(
                f"{item.path}: MD5 differs from the listing (corrupt download, removed); rerun to fetch it again"
            )
        part.replace(dest)
        return


# -- the descriptions -----------------------------------------------------------------------------------------
def _write_descriptions(
    root: Path, variant: str, descriptions_url: str, op_text: str | None = None
) -> dict[str, str]:
    """Write the op prompts (shipped) and, for Verified, the bpp prompts (fetched); both checked to name the
    same rows. Returns prompt set -> path relative to ``root``."""
    written = {}
    op_path = root / PROMPT_SET_FILES["op"]
    text = op_text if op_text is not None else packaged_descriptions()
    if not op_path.is_file() or op_path.read_text(encoding="utf-8") != text:
        if op_path.is_file():
            raise FetchError(
                f"{op_path}: exists and differs from the official original descriptions; move it away"
            )
        op_path.parent.mkdir(parents=True, exist_ok=True)
        op_path.write_text(text, encoding="utf-8", newline="")
    written["op"] = PROMPT_SET_FILES["op"]
    op_rows = read_descriptions(op_path)
    if variant == "verified":
        bpp_path = root / PROMPT_SET_FILES["bpp"]
        if not bpp_path.is_file():
            url = f"{descriptions_url}/{PROMPT_SET_FILES['bpp']}"
            try:
                with _get(url) as response:
                    data = response.read()
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                raise FetchError(f"cannot fetch the best-practice prompts from {url}: {exc}") from exc
            bpp_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = bpp_path.with_name(bpp_path.name + ".part")
            tmp.write_bytes(data)
            try:
                rows = read_descriptions(tmp)
            except DatasetError as exc:
                tmp.unlink()
                raise FetchError(f"{url}: not the official descriptions ({exc})") from exc
            if {(r.id, r.perspective, r.take, r.scenario) for r in rows} != {
                (r.id, r.perspective, r.take, r.scenario) for r in op_rows
            }:
                tmp.unlink()
                raise FetchError(f"{url}: its rows are not those of the original descriptions")
            tmp.replace(bpp_path)
        written["bpp"] = PROMPT_SET_FILES["bpp"]
    return written


# -- the fetch ------------------------------------------------------------------------------------------------
def _check_dest(root: Path, variant: str) -> dict[str, Any] | None:
    root.mkdir(parents=True, exist_ok=True)
    marker = read_marker(root)
    if marker is not None and marker.get("variant") != variant:
        raise FetchError(
            f"{root / DATASET_MARKER}: this folder holds the {marker.get('variant')} set; fetch {variant} into "
            "another folder (the leaderboard forbids mixing them)"
        )
    return marker


def _local_state(root: Path, files: Sequence[RemoteFile]) -> tuple[list[RemoteFile], int, list[str]]:
    """Files still to fetch, bytes already present, and files of the wrong size (never overwritten)."""
    todo, present_bytes, wrong = [], 0, []
    for item in files:
        local = root / item.path
        if local.is_file():
            size = local.stat().st_size
            if size == item.size:
                present_bytes += size
                continue
            wrong.append(f"{local} ({size} bytes, the source has {item.size})")
            continue
        partial = local.with_name(local.name + ".part")
        if partial.is_file():
            present_bytes += min(partial.stat().st_size, item.size)
        todo.append(item)
    return todo, present_bytes, wrong


def _marker(
    variant: str,
    source: str,
    fps: Sequence[int],
    views: Sequence[str],
    complete: bool,
    status: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "format": "physrefine.dataset/1",
        "variant": variant,
        "source": source,
        "fps": sorted(set(fps)),
        "views": [v for v in PERSPECTIVES if v in views],
        "complete": complete,
        "status": status,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }


def _normalise(fps: Sequence[int], views: Sequence[str] | None) -> tuple[list[int], list[str]]:
    rates = sorted(set(int(f) for f in fps))
    bad = [f for f in rates if f not in FPS_AVAILABLE]
    if not rates or bad:
        raise FetchError(f"--fps {bad or rates}: the benchmark ships {list(FPS_AVAILABLE)} FPS")
    chosen = list(PERSPECTIVES)
    if views:
        chosen = []
        for view in views:
            name = view if view.startswith("perspective-") else f"perspective-{view}"
            if name not in PERSPECTIVES:
                raise FetchError(f"--views {view!r}: expected left, center or right")
            chosen.append(name)
    return rates, [v for v in PERSPECTIVES if v in chosen]


def _finish(
    root: Path,
    variant: str,
    source: str,
    files: Sequence[RemoteFile],
    parts: dict[str, Any],
    rates: Sequence[int],
    views: Sequence[str],
    descriptions: dict[str, str],
    result: FetchResult,
) -> FetchResult:
    missing = [item.path for item in files if not (root / item.path).is_file()]
    wrong = [
        item.path
        for item in files
        if (root / item.path).is_file() and (root / item.path).stat().st_size != item.size
    ]
    if missing or wrong:
        status = f"{len(missing) + len(wrong)} of {len(files)} file(s) missing or of the wrong size"
        write_marker(root, _marker(variant, source, rates, views, False, status, parts=parts))
        raise FetchError(f"{root}: {status}; rerun to resume")
    marker = _marker(
        variant,
        source,
        rates,
        views,
        True,
        f"complete: {len(files)} file(s) checked",
        parts=parts,
        files=len(files),
        descriptions=descriptions,
        default_descriptions="bpp" if variant == "verified" else "op",
    )
    write_marker(root, marker)
    result.files, result.parts, result.marker = len(files), parts, marker
    return result


def fetch_original(
    dest: str | Path,
    fps: Sequence[int] = (8,),
    views: Sequence[str] | None = None,
    *,
    base_url: str | None = None,
    bucket: str = GCS_BUCKET,
    progress: FetchProgress | None = None,
    verify: bool = False,
    op_descriptions: str | None = None,
) -> FetchResult:
    """Fetch (or resume, or check) the original Physics-IQ set into ``dest`` (see the module docstring).

    Args:
        dest: The dataset folder (created; an unfinished download in it resumes).
        fps: Frame rates to fetch (8, 16, 24, 30).
        views: Perspectives (``left``, ``center``, ``right``); all by default.
        base_url: The storage endpoint (default :data:`GCS_BASE_URL`; tests use a local server).
        bucket: The bucket.
        progress: Progress callbacks.
        verify: Also re-check the MD5 of files already present.
        op_descriptions: The original descriptions CSV text naming the benchmark's files (default: the
            official one shipped with physrefine; tests use a small one).

    Raises:
        FetchError: listing, network, size/MD5, layout, or a file of the wrong size already in ``dest``.
    """
    root = Path(dest)
    base_url = base_url or GCS_BASE_URL
    progress = progress or FetchProgress()
    rates, chosen = _normalise(fps, views)
    _check_dest(root, "original")
    source = f"gs://{bucket} ({base_url})"
    write_marker(root, _marker("original", source, rates, chosen, False, "listing the bucket"))
    descriptions = _write_descriptions(root, "original", "", op_descriptions)
    rows = [r for r in read_descriptions(root / PROMPT_SET_FILES["op"]) if r.perspective in chosen]
    prefixes = [
        f"{folder}/{rate}FPS/"
        for folder in ("split-videos/testing", "split-videos/conditioning", "video-masks/real")
        for rate in rates
    ]
    files = select(list_gcs([*prefixes, "switch-frames/"], base_url=base_url, bucket=bucket), rates, chosen)
    parts = check_listing(files, rows, rates)
    todo, present_bytes, wrong = _local_state(root, files)
    if wrong:
        raise FetchError(
            f"{root}: file(s) already there with another size (move them away and rerun): {wrong[:5]}"
        )
    if verify:
        bad = [i.path for i in files if i not in todo and i.md5 and _md5(root / i.path) != i.md5]
        if bad:
            raise FetchError(
                f"{root}: file(s) whose MD5 differs from the bucket's (move them away and rerun): {bad[:5]}"
            )
    result = FetchResult(root, "original", present=len(files) - len(todo))
    progress.start(len(files), sum(i.size for i in files))
    progress.advance(present_bytes)
    write_marker(root, _marker("original", source, rates, chosen, False, f"downloading {len(todo)} file(s)"))
    for item in todo:
        url = f"{base_url}/{bucket}/{urllib.parse.quote(item.path)}"
        download_file(url, root / item.path, item, progress)
        progress.file_done(item.path)
        result.downloaded += 1
    return _finish(root, "original", source, files, parts, rates, chosen, descriptions, result)


def _transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the HTTP stack under ``huggingface_hub`` (httpx, requests, ...): a network
    problem to report as such, whichever client the installed version uses."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def fetch_verified(
    dest: str | Path,
    fps: Sequence[int] = (8,),
    views: Sequence[str] | None = None,
    *,
    repo_id: str = HF_REPO_ID,
    revision: str | None = None,
    endpoint: str | None = None,
    descriptions_url: str | None = None,
    progress: FetchProgress | None = None,
    op_descriptions: str | None = None,
) -> FetchResult:
    """Fetch (or resume, or check) Physics-IQ Verified from the Hugging Face Hub into ``dest``.

    The token is ``huggingface_hub``'s own (``HF_TOKEN`` or ``hf auth login``), never an argument.

    Args:
        dest: The dataset folder (created; an unfinished download in it resumes).
        fps: Frame rates to fetch (8, 16, 24, 30).
        views: Perspectives (``left``, ``center``, ``right``); all by default.
        repo_id: The dataset repository.
        revision: A branch, tag or commit (default: the main branch, pinned to its commit for this fetch).
        endpoint: The Hub endpoint (default: the library's, ``HF_ENDPOINT``; tests use a local server).
        descriptions_url: Where the official best-practice prompts are read from (default
            :data:`DESCRIPTIONS_BASE_URL`, the official repository at a pinned commit).
        progress: Progress callbacks.
        op_descriptions: As in :func:`fetch_original`.

    Raises:
        MissingExtraError: ``huggingface_hub`` is not installed.
        FetchError: access (gated dataset without a token), listing, network, size, layout, or a file of the
            wrong size already in ``dest``.
    """
    from physics_iq.registry import MissingExtraError

    try:
        from huggingface_hub import HfApi, RepoFile, hf_hub_download
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError as exc:
        raise MissingExtraError(
            "fetching Physics-IQ Verified needs huggingface_hub: pip install 'physrefine[data]'"
        ) from exc
    root = Path(dest)
    progress = progress or FetchProgress()
    rates, chosen = _normalise(fps, views)
    _check_dest(root, "verified")
    api = HfApi(endpoint=endpoint)
    access = (
        f"the dataset {repo_id} is gated: request access on its Hub page (approved automatically), then log in "
        "with `hf auth login` or set HF_TOKEN in the environment"
    )
    try:
        info = api.dataset_info(repo_id, revision=revision)
        commit = str(info.sha)
        tree = api.list_repo_tree(repo_id, repo_type="dataset", revision=commit, recursive=True)
        listed = [RemoteFile(f.path, int(f.size)) for f in tree if isinstance(f, RepoFile)]
    except GatedRepoError as exc:
        raise FetchError(access) from exc
    except RepositoryNotFoundError as exc:
        raise FetchError(f"{repo_id}: not found, or not visible without a token ({access})") from exc
    except HfHubHTTPError as exc:
        raise FetchError(f"{repo_id}: the Hub refused the listing ({exc}); {access}") from exc
    except Exception as exc:
        if isinstance(exc, OSError) or _transport_error(exc):
            raise FetchError(f"{repo_id}: cannot reach the Hub ({exc}); rerun to resume") from exc
        raise
    source = f"huggingface:{repo_id}@{commit}"
    write_marker(root, _marker("verified", source, rates, chosen, False, "listing the repository"))
    descriptions = _write_descriptions(
        root, "verified", descriptions_url or DESCRIPTIONS_BASE_URL, op_descriptions
    )
    rows = [r for r in read_descriptions(root / PROMPT_SET_FILES["op"]) if r.perspective in chosen]
    files = select(listed, rates, chosen)
    parts = check_listing(files, rows, rates)
    todo, present_bytes, wrong = _local_state(root, files)
    if wrong:
        raise FetchError(
            f"{root}: file(s) already there with another size (move them away and rerun): {wrong[:5]}"
        )
    result = FetchResult(root, "verified", present=len(files) - len(todo))
    progress.start(len(files), sum(i.size for i in files))
    progress.advance(present_bytes)
    write_marker(root, _marker("verified", source, rates, chosen, False, f"downloading {len(todo)} file(s)"))
    # Our progress bar counts files' bytes as they complete; the library's own bars would draw over it.
    bars_were_off = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        for item in todo:
            try:
                # Into local_dir: an interrupted file waits in local_dir/.cache/huggingface/download and is
                # resumed by the next call; the final name appears only when it is whole.
                hf_hub_download(
                    repo_id,
                    item.path,
                    repo_type="dataset",
                    revision=commit,
                    local_dir=root,
                    endpoint=endpoint,
                )
            except GatedRepoError as exc:
                raise FetchError(access) from exc
            except Exception as exc:
                if isinstance(exc, HfHubHTTPError | OSError) or _transport_error(exc):
                    raise FetchError(
                        f"{item.path}: download failed ({exc}); rerun the same command to resume"
                    ) from exc
                raise
            size = (root / item.path).stat().st_size
            if size != item.size:
                raise FetchError(f"{item.path}: got {size} bytes, the Hub lists {item.size}")
            progress.advance(item.size)
            progress.file_done(item.path)
            result.downloaded += 1
    finally:
        if not bars_were_off:
            enable_progress_bars()
    return _finish(root, "verified", source, files, parts, rates, chosen, descriptions, result)


__all__ = [
    "DESCRIPTIONS_COMMIT",
    "FPS_AVAILABLE",
    "GCS_BUCKET",
    "HF_REPO_ID",
    "REQUIRED_PARTS",
    "FetchError",
    "FetchProgress",
    "FetchResult",
    "RemoteFile",
    "check_listing",
    "download_file",
    "expected_names",
    "fetch_original",
    "fetch_verified",
    "list_gcs",
    "packaged_descriptions",
    "select",
]
