"""physrefine fetch-data: the original set from a (local, fake) public bucket and Physics-IQ Verified through
huggingface_hub pointed at a local Hub stand-in; interrupted and resumed, layout and file count checked, never
taken for complete when it is not."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from physics_iq.errors import DatasetError
from physics_iq.evaluate import Evaluator
from physics_iq.fetch import FetchError, FetchProgress, fetch_original, fetch_verified
from physics_iq.layout import DATASET_MARKER, DatasetLayout, read_marker
from tests.datasets import build_tiny_dataset, write_generated_folder
from tests.fake_storage import Storage, serve


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[dict[str, bytes], str, str]:
    """The tiny dataset's files under the official download names, its op and bpp descriptions."""
    layout = build_tiny_dataset(tmp_path_factory.mktemp("src") / "ds", n_scenarios=2)
    files: dict[str, bytes] = {}
    for row in layout.rows:
        test, cond = layout.testing_video(row, 8), layout.conditioning_video(row, 8)
        files[f"split-videos/testing/8FPS/{test.name}"] = test.read_bytes()
        files[f"split-videos/conditioning/8FPS/{cond.name}"] = cond.read_bytes()
        if row.take == 1:
            switch = layout.switch_frame(row)
            files[f"switch-frames/{switch.name}"] = switch.read_bytes()
    op = layout.descriptions_path.read_text(encoding="utf-8")
    bpp = op.replace("Tiny scenario", "Best practice: tiny scenario")
    return files, op, bpp


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and ".cache" not in p.parts and p.name != DATASET_MARKER
    }


def _bucket(source, **kwargs) -> Storage:
    files, _, _ = source
    extra = {
        # Not fetched: other frame rates and folders the official script also syncs.
        "full-videos/take-1/8FPS/0001_full-videos_8FPS_perspective-left_take-1_trimmed-tiny-scenario-0.mp4": b"x",
        "split-videos/testing/30FPS/0001_testing-videos_30FPS_perspective-left_take-1_trimmed-tiny-scenario-0.mp4": b"y",
    }
    return Storage(objects={**files, **extra}, **kwargs)


class StopAfter(FetchProgress):
    """A user pressing Ctrl-C after ``n`` files."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done = 0
        self.total = (0, 0)
        self.bytes = 0

    def start(self, files: int, total_bytes: int) -> None:
        self.total = (files, total_bytes)

    def advance(self, n_bytes: int) -> None:
        self.bytes += n_bytes

    def file_done(self, path: str) -> None:
        self.done += 1
        if self.done == self.n:
            raise KeyboardInterrupt


def test_original_fetch_interrupted_then_resumed_is_complete_and_scores(source, tmp_path):
    files, op, _ = source
    storage = _bucket(source)
    dest = tmp_path / "physics-IQ-benchmark"
    with serve(storage) as url:
        progress = StopAfter(5)
        with pytest.raises(KeyboardInterrupt):
            fetch_original(dest, [8], base_url=url, progress=progress, op_descriptions=op)
        # A partial download is never taken for complete.
        assert read_marker(dest)["complete"] is False
        with pytest.raises(DatasetError, match="has not finished"):
            DatasetLayout(dest)
        got = sum(1 for p in dest.rglob("*.mp4")) + sum(1 for p in dest.rglob("*.jpg"))
        assert got == 5
        storage.log.clear()
        progress = StopAfter(0)
        result = fetch_original(dest, [8], base_url=url, progress=progress, op_descriptions=op)
    # The rerun fetched only what was missing, and counted what was there in its progress.
    downloads = [entry for entry in storage.log if entry[1].startswith("/physics-iq-benchmark/")]
    assert len(downloads) == len(files) - 5 == result.downloaded and result.present == 5
    assert progress.total == (len(files), sum(len(b) for b in files.values())) == (len(files), progress.bytes)
    assert {name: hashlib.sha256(data).hexdigest() for name, data in files.items()} == {
        k: v for k, v in _digest(dest).items() if not k.startswith("descriptions")
    }
    marker = read_marker(dest)
    assert marker["complete"] is True and marker["files"] == len(files) and marker["variant"] == "original"
    assert marker["parts"]["masks"] == "absent" and marker["parts"]["testing"] == 12
    # The download script's layout (split-videos/testing/8FPS) is read and scored.
    layout = DatasetLayout(dest)
    assert layout.variant == "original" and layout.prompt_set == "op" and layout.fps_available() == [8]
    generated = write_generated_folder(layout, tmp_path / "gen", source="take2")
    assert Evaluator(layout, 8, cache_dir=False).evaluate_folder(generated).overall.physics_iq_score == 100.0


def test_a_dropped_connection_resumes_with_a_range_request(source, tmp_path):
    _, op, _ = source
    storage = _bucket(source)
    name = sorted(n for n in storage.objects if n.startswith("split-videos/testing/8FPS/"))[0]
    size = len(storage.objects[name])
    storage.cut[name] = 3  # more than the retries of one call: the call fails, the .part stays
    dest = tmp_path / "ds"
    with serve(storage) as url:
        with pytest.raises(FetchError, match="rerun the same command to resume"):
            fetch_original(dest, [8], base_url=url, op_descriptions=op)
        part = dest / (name + ".part")
        have = part.stat().st_size if part.is_file() else 0
        assert 0 < have < size and not (dest / name).exists()
        assert read_marker(dest)["complete"] is False
        storage.log.clear()
        fetch_original(dest, [8], base_url=url, op_descriptions=op)
    ranges = [entry[2] for entry in storage.log if entry[1].endswith(name)]
    assert ranges == [f"bytes={have}-"]  # one request, for the rest only
    assert (dest / name).read_bytes() == storage.objects[name] and not part.exists()
    assert read_marker(dest)["complete"] is True


def test_one_dropped_connection_is_healed_within_the_call(source, tmp_path):
    _, op, _ = source
    storage = _bucket(source)
    name = sorted(n for n in storage.objects if n.startswith("switch-frames/"))[0]
    storage.cut[name] = 1
    with serve(storage) as url:
        fetch_original(tmp_path / "ds", [8], base_url=url, op_descriptions=op)
    requests = [entry for entry in storage.log if entry[1].endswith(name)]
    assert len(requests) == 2 and requests[1][2] is not None  # the second one asked for the rest
    assert (tmp_path / "ds" / name).read_bytes() == storage.objects[name]


def test_a_corrupt_object_is_refused_and_not_kept(source, tmp_path):
    _, op, _ = source
    storage = _bucket(source)
    name = sorted(storage.objects)[3]
    storage.bad_md5.add(name)
    with serve(storage) as url, pytest.raises(FetchError, match="MD5"):
        fetch_original(tmp_path / "ds", [8], base_url=url, op_descriptions=op)
    assert not (tmp_path / "ds" / name).exists() and not (tmp_path / "ds" / (name + ".part")).exists()
    assert read_marker(tmp_path / "ds")["complete"] is False


def test_a_source_missing_files_fails_the_layout_check_before_downloading(source, tmp_path):
    _, op, _ = source
    storage = _bucket(source)
    testing = sorted(n for n in storage.objects if n.startswith("split-videos/testing/8FPS/"))
    del storage.objects[testing[2]]
    # A part the source has must be complete too: one real mask is not enough.
    storage.objects[
        "video-masks/real/8FPS/" + testing[0].rsplit("/", 1)[1].replace("testing-videos", "video-masks")
    ] = b"m"
    with serve(storage) as url, pytest.raises(FetchError, match="expected layout") as err:
        fetch_original(tmp_path / "ds", [8], base_url=url, op_descriptions=op)
    assert "testing: 1 of 12" in str(err.value) and "masks: 11 of 12" in str(err.value)
    assert not list((tmp_path / "ds").rglob("*.mp4"))


def test_a_file_of_another_size_already_there_is_left_alone(source, tmp_path):
    _, op, _ = source
    storage = _bucket(source)
    name = sorted(storage.objects)[5]
    mine = tmp_path / "ds" / name
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file")
    with serve(storage) as url, pytest.raises(FetchError, match="another size"):
        fetch_original(tmp_path / "ds", [8], base_url=url, op_descriptions=op)
    assert mine.read_bytes() == b"my own file"


def test_views_restrict_the_download_and_the_dataset(source, tmp_path):
    _, op, _ = source
    storage = _bucket(source)
    with serve(storage) as url:
        result = fetch_original(tmp_path / "ds", [8], ["left"], base_url=url, op_descriptions=op)
    assert all("perspective-left" in p.name for p in (tmp_path / "ds").rglob("*.mp4"))
    assert result.files == 4 + 4 + 2  # testing and conditioning (both takes), switch frames (take 1)
    layout = DatasetLayout(tmp_path / "ds")
    assert {r.perspective for r in layout.rows} == {"perspective-left"} and len(layout.take1_rows()) == 2
    Evaluator(layout, 8, cache_dir=False).pairs()  # the dataset check accepts the restricted views


def test_verified_fetch_through_huggingface_hub(source, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    files, op, bpp = source
    storage = Storage(
        hub_files=dict(files),
        raw={"descriptions/best_practice/descriptions_base.csv": bpp.encode()},
        gated_token="hf_test_token",
    )
    dest = tmp_path / "physics-IQ-benchmark-verified"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored login either
    with serve(storage) as url:
        kwargs = dict(
            repo_id=storage.repo_id, endpoint=url, descriptions_url=f"{url}/raw", op_descriptions=op
        )
        with pytest.raises(FetchError, match=r"gated.*HF_TOKEN"):
            fetch_verified(dest, [8], **kwargs)
        # The token is the library's own (the environment), never an argument.
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        with pytest.raises(KeyboardInterrupt):
            fetch_verified(dest, [8], progress=StopAfter(4), **kwargs)
        assert read_marker(dest)["complete"] is False
        with pytest.raises(DatasetError, match="has not finished"):
            DatasetLayout(dest)
        storage.log.clear()
        result = fetch_verified(dest, [8], **kwargs)
    resolved = [e for e in storage.log if "/resolve/" in e[1] and e[0] == "GET"]
    assert len(resolved) == len(files) - 4 == result.downloaded and result.present == 4
    assert all(e[3] == "Bearer hf_test_token" for e in storage.log if e[1].startswith(("/api", "/datasets")))
    assert {k: v for k, v in _digest(dest).items() if not k.startswith("descriptions")} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
    marker = read_marker(dest)
    assert marker["complete"] and marker["variant"] == "verified" and marker["source"].endswith(COMMIT_SUFFIX)
    layout = DatasetLayout(dest)  # Verified: both prompt sets, bpp by default
    assert layout.variant == "verified" and layout.prompt_set == "bpp"
    assert layout.rows[0].description.startswith("Best practice")
    op_layout = DatasetLayout(dest, descriptions="op")
    assert op_layout.prompt_set == "op" and op_layout.rows[0].description.startswith("Tiny scenario")
    assert DatasetLayout(dest / "descriptions" / "descriptions_original.csv").prompt_set == "op"
    generated = write_generated_folder(layout, tmp_path / "gen", source="take2")
    scored = Evaluator(layout, 8, cache_dir=False).evaluate_folder(generated)
    assert scored.overall.physics_iq_score == 100.0 and scored.verified is not None
    assert scored.verified.physics_iq_score == pytest.approx(100.0)


COMMIT_SUFFIX = "@0123456789abcdef0123456789abcdef01234567"


def test_fetch_data_cli_draws_progress_and_refuses_the_other_variant(source, tmp_path, monkeypatch):
    import physics_iq.fetch as fetch

    _, op, _ = source
    storage = _bucket(source)
    monkeypatch.setattr(fetch, "packaged_descriptions", lambda: op)
    dest = tmp_path / "ds"
    with serve(storage) as url:
        monkeypatch.setattr(fetch, "GCS_BASE_URL", url)
        done = CliRunner().invoke(
            app, ["fetch-data", str(dest), "--variant", "original", "--fps", "8", "--json"]
        )
        assert done.exit_code == 0, done.output
        summary = json.loads(done.stdout)
        assert summary["complete"] is True and summary["variant"] == "original"
        again = CliRunner().invoke(app, ["fetch-data", str(dest), "--variant", "verified"])
    assert again.exit_code == 2 and "holds the original set" in again.output
    assert (dest / DATASET_MARKER).is_file()
