"""OpenAI-compatible VLM backend against a scripted chat-completions server on 127.0.0.1 (no network)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.prompting import PromptSet
from agent.reasoning import VLMReasoner, make_scene
from agent.schemas import ReplyParseError
from agent.views import ViewOptions, clip_video, critique_views, to_message_kwargs
from agent.vlm import VLMS
from agent.vlm.base import Message, Video, VLMError
from agent.vlm.openai_vlm import OpenAIVLM, encode_frame
from physics_iq.layout import DatasetLayout
from physics_iq.synthetic import build_suite
from physics_iq.video import read_video
from tests import replies
from tests.datasets import build_tiny_dataset
from tests.openai_server import Reply, ScriptedServer, completion, decode_video, error, sent_parts

FAKE_KEY = "sk-test-DO-NOT-LEAK-8f3a91c2"
SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.stop()


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PHYSREFINE_TEST_KEY", FAKE_KEY)
    return FAKE_KEY


def make_vlm(server: ScriptedServer, **options: Any) -> OpenAIVLM:
    defaults = {"api_key_env": "PHYSREFINE_TEST_KEY", "max_retries": "2", "timeout": "5"}
    return VLMS.resolve("openai")(model="tiny-test-model", base_url=server.url, **{**defaults, **options})


def frames(count: int = 5, size: tuple[int, int] = (90, 160)) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return tuple(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for _ in range(count))


def conversation(images: tuple[np.ndarray, ...] = ()) -> list[Message]:
    return [Message("system", "You judge physics."), Message("user", "What happens next?", images)]


def test_valid_json_reply_with_images_schema_usage_and_cost(server: ScriptedServer, fake_key: str) -> None:
    server.script = [completion('{"verdict": "falls"}')]
    vlm = make_vlm(server, max_frames="3", max_side="64", prompt_price="1.0", completion_price="2.0")
    reply = vlm.chat(conversation(frames(5)), json_schema=SCHEMA)
    assert reply.text == '{"verdict": "falls"}'
    assert (reply.prompt_tokens, reply.completion_tokens) == (1000, 200)
    assert reply.cost_usd == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)
    assert reply.metadata["frames_sent"] == 3
    (request,) = server.requests
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"] == SCHEMA
    assert request["messages"][0] == {"role": "system", "content": "You judge physics."}
    parts = request["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "What happens next?"}
    urls = [part["image_url"]["url"] for part in parts[1:]]
    assert len(urls) == 3 and all(url.startswith("data:image/jpeg;base64,") for url in urls)
    decoded = cv2.imdecode(
        np.frombuffer(base64.b64decode(urls[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR
    )
    assert decoded.shape == (36, 64, 3)  # 90x160 scaled so the larger side is 64
    assert server.headers[0]["authorization"] == f"Bearer {FAKE_KEY}"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('```json\n{"verdict": "falls"}\n```', id="code-fence"),
        pytest.param('{"verdict": "fal', id="malformed"),
        pytest.param("The ball falls.", id="prose-from-a-server-ignoring-response-format"),
    ],
)
def test_raw_text_is_returned_for_the_agent_to_validate(
    server: ScriptedServer, fake_key: str, text: str
) -> None:
    server.script = [completion(text)]
    assert make_vlm(server).chat(conversation(), json_schema=SCHEMA).text == text


def test_refusal_and_empty_content_are_vlm_errors(server: ScriptedServer, fake_key: str) -> None:
    server.script = [completion(None, refusal="I can't help with that.")]
    with pytest.raises(VLMError, match="refused: I can't help with that"):
        make_vlm(server).chat(conversation())
    server.requests.clear()
    server.script = [completion("   ")]
    with pytest.raises(VLMError, match="empty content"):
        make_vlm(server).chat(conversation())


def test_429_then_ok_is_retried(server: ScriptedServer, fake_key: str) -> None:
    server.script = [error(429, "rate limited"), completion("ok")]
    assert make_vlm(server).chat(conversation()).text == "ok"
    assert len(server.requests) == 2


def test_persistent_500s_exhaust_the_retry_budget(server: ScriptedServer, fake_key: str) -> None:
    server.script = [error(500, "boom")]
    with pytest.raises(VLMError, match="HTTP 500"):
        make_vlm(server, max_retries="2").chat(conversation())
    assert len(server.requests) == 3  # first try + 2 retries


def test_a_hanging_server_times_out(server: ScriptedServer, fake_key: str) -> None:
    def hang() -> Reply:
        time.sleep(2.0)
        return completion("too late")

    server.script = [hang]
    started = time.perf_counter()
    with pytest.raises(VLMError, match=r"within 0\.3 s"):
        make_vlm(server, timeout="0.3", max_retries="0").chat(conversation())
    assert time.perf_counter() - started < 1.9


def test_server_rejecting_response_format_is_asked_again_without_it(
    server: ScriptedServer, fake_key: str
) -> None:
    server.script = [error(400, "response_format is not supported"), completion('{"verdict": "x"}')]
    vlm = make_vlm(server)
    reply = vlm.chat(conversation(), json_schema=SCHEMA)
    assert reply.text == '{"verdict": "x"}' and reply.metadata["response_format_rejected"]
    assert "response_format" in server.requests[0] and "response_format" not in server.requests[1]
    vlm.chat(conversation(), json_schema=SCHEMA)  # and it stops asking for the rest of the run
    assert "response_format" not in server.requests[2]


def test_no_key_needed_for_local_servers_but_required_for_openai(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHYSREFINE_TEST_KEY", raising=False)
    server.script = [completion("ok")]
    vlm = make_vlm(server)
    assert vlm.chat(conversation()).text == "ok"
    assert vlm.chat(conversation()).cost_usd is None  # no price for an unknown local model
    with pytest.raises(VLMError, match="set the environment variable PHYSREFINE_TEST_KEY"):
        OpenAIVLM(model="gpt-4o-mini", api_key_env="PHYSREFINE_TEST_KEY")


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="max_frame"):
        OpenAIVLM(model="m", base_url="http://127.0.0.1:9/v1", max_frame="3")
    with pytest.raises(ValueError, match="timeout"):
        OpenAIVLM(model="m", base_url="http://127.0.0.1:9/v1", timeout="soon")


def test_images_on_a_system_message_are_rejected(server: ScriptedServer, fake_key: str) -> None:
    with pytest.raises(ValueError, match="only user messages may carry images"):
        make_vlm(server).chat([Message("system", "x", frames(1))])


def test_encode_frame_keeps_small_frames_and_round_trips_png() -> None:
    frame = frames(1, (8, 12))[0]
    url = encode_frame(frame, max_side=64, image_format="png")
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), frame)


def test_api_key_never_reaches_logs_replies_or_files(
    server: ScriptedServer, fake_key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script = [error(400, "response_format is not supported"), completion("ok"), error(500, "boom")]
    vlm = make_vlm(server, max_retries="0")
    reply = vlm.chat(conversation(frames(2)), json_schema=SCHEMA)
    with pytest.raises(VLMError) as failure:
        vlm.chat(conversation())
    # What a run would persist: the reply, its metadata, the error text, the backend's repr.
    record = {"reply": asdict(reply), "error": str(failure.value), "repr": repr(vlm)}
    (tmp_path / "trace.json").write_text(json.dumps(record, default=str))
    written = "".join(path.read_text() for path in tmp_path.rglob("*") if path.is_file())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the backend and the client did log
    assert FAKE_KEY not in written and FAKE_KEY not in logged


# -- what the model sees: text, then (label, image) pairs, then the video -------------------------------------
LABELS = tuple(f"generated, t = +{k}.00 s" for k in range(1, 6))


def test_labels_precede_their_images_and_stay_with_them_when_sampled(
    server: ScriptedServer, fake_key: str
) -> None:
    server.script = [completion("ok")]
    vlm = make_vlm(server, max_frames="3", max_side="64")
    reply = vlm.chat([Message("user", "What happens next?", frames(5), LABELS)])
    # 5 images sampled to 3 (the first, middle and last): the other two labels are dropped with them.
    assert sent_parts(server.requests[0]) == [
        ("text", "What happens next?"),
        ("text", "generated, t = +1.00 s"),
        ("image", (36, 64)),
        ("text", "generated, t = +3.00 s"),
        ("image", (36, 64)),
        ("text", "generated, t = +5.00 s"),
        ("image", (36, 64)),
    ]
    assert reply.metadata["frames_sent"] == 3 and reply.metadata["video_frames_sent"] == 0
    assert "mm_processor_kwargs" not in server.requests[0] and "media_io_kwargs" not in server.requests[0]


def test_critique_views_reach_the_server_labelled_in_order(server: ScriptedServer, fake_key: str) -> None:
    server.script = [completion("ok")]
    prefix = np.random.default_rng(0).integers(0, 256, (24, 180, 320, 3), dtype=np.uint8)
    generated = np.random.default_rng(1).integers(0, 256, (40, 180, 320, 3), dtype=np.uint8)
    views = critique_views(prefix, generated, 8.0, ViewOptions(contact_sheet=True))
    make_vlm(server).chat([Message("user", "Critique this.", **to_message_kwargs(views))])
    parts = sent_parts(server.requests[0])
    assert parts[0] == ("text", "Critique this.")
    # 11 labelled images (max_frames defaults to 16), each label right before its image.
    assert [value for kind, value in parts[1::2]] == [view.label for view in views]
    assert [kind for kind, _ in parts[2::2]] == ["image"] * 11
    assert [value for _, value in parts[2::2]] == [(180, 320)] * 10 + [(291, 512)]  # the sheet


def video_message(count: int = 40, fps: float = 8.0) -> Message:
    """Switch frame and continuation as a clip whose frame ``i`` is grey level ``5 * i``."""
    grey = (np.arange(count) * 5).astype(np.uint8)
    clip = np.broadcast_to(grey[:, None, None, None], (count, 90, 160, 3)).copy()
    video = clip_video(clip[:1], clip[1:], fps)
    return Message("user", "Critique this.", frames(2), ("switch frame", "generated"), video)


def test_video_as_a_jpeg_frame_sequence_with_its_fps(server: ScriptedServer, fake_key: str) -> None:
    server.script = [completion("ok")]
    vlm = make_vlm(server, video="frames", video_frames="16", max_side="64")
    message = video_message()
    reply = vlm.chat([message], json_schema=SCHEMA)
    request = server.requests[0]
    # 40 frames over at most 16: every 3rd frame (14 of them) at 8/3 fps, so the timing stays exact.
    assert sent_parts(request) == [
        ("text", "Critique this."),
        ("text", "switch frame"),
        ("image", (36, 64)),
        ("text", "generated"),
        ("image", (36, 64)),
        ("text", message.video.label if message.video else ""),
        ("video", ("video/jpeg", 14, 36, 64)),
    ]
    assert request["mm_processor_kwargs"] == {"fps": pytest.approx(8 / 3)}
    assert request["media_io_kwargs"] == {"video": {"fps": pytest.approx(8 / 3), "num_frames": -1}}
    assert request["response_format"]["type"] == "json_schema"
    assert reply.metadata["video_frames_sent"] == 14 and reply.metadata["video_fps"] == pytest.approx(8 / 3)
    # The frames sent are the clip's frames 0, 3, ..., 39 (grey level 5 * index).
    _, sent, _ = decode_video(request["messages"][0]["content"][-1]["video_url"]["url"])
    assert [round(float(frame.mean()) / 5) for frame in sent] == list(range(0, 40, 3))


def test_video_as_mp4(server: ScriptedServer, fake_key: str) -> None:
    server.script = [completion("ok")]
    make_vlm(server, video="mp4", max_side="63").chat([video_message(count=20, fps=8.0)])
    request = server.requests[0]
    url = request["messages"][0]["content"][-1]["video_url"]["url"]
    media, decoded, fps = decode_video(url)
    # 20 frames at 8 fps, downscaled to 63 x 35 and cropped to even sides for H.264.
    assert (media, decoded.shape, fps) == ("video/mp4", (20, 34, 62, 3), 8.0)
    assert request["mm_processor_kwargs"] == {"fps": 8.0}
    assert request["media_io_kwargs"] == {"video": {"fps": 8.0, "num_frames": -1}}


def test_without_the_video_option_the_video_is_left_out(server: ScriptedServer, fake_key: str) -> None:
    server.script = [completion("ok")]
    vlm = make_vlm(server, max_side="64")
    message = video_message()
    vlm.chat([message, Message("assistant", "ok"), Message("user", "Again.", video=message.video)])
    request = server.requests[0]
    assert [kind for kind, _ in sent_parts(request, 0)] == ["text", "text", "image", "text", "image"]
    assert request["messages"][2]["content"] == "Again."  # no images, no video: plain text content
    assert "mm_processor_kwargs" not in request and "media_io_kwargs" not in request


def test_a_server_refusing_the_video_names_the_option(server: ScriptedServer, fake_key: str) -> None:
    server.script = [error(400, "At most 0 video(s) may be provided in one prompt.")]
    vlm = make_vlm(server, video="frames")
    with pytest.raises(VLMError, match=r"refused a request with a video.*video=none.*\(video=frames\)"):
        vlm.chat([video_message()])
    # With a schema: asked again without response_format, refused again: the video is named, and the
    # schema is not given up for the rest of the run (the video was the problem).
    server.requests.clear()
    with pytest.raises(VLMError, match="video=none"):
        vlm.chat([video_message()], json_schema=SCHEMA)
    assert ["response_format" in r for r in server.requests] == [True, False]
    server.script = [completion("ok")]
    vlm.chat([video_message()], json_schema=SCHEMA)
    assert "response_format" in server.requests[-1]


def test_message_labels_and_video_are_checked() -> None:
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        Message("user", "x", frames(3), ("a", "b"))
    assert Message("user", "x", frames(3)).labels == ()  # unlabelled, as before
    with pytest.raises(ValueError, match=r"Video.frames must be \(T, H, W, 3\) uint8"):
        Video(np.zeros((4, 4, 3), np.uint8), 8.0, "x")
    with pytest.raises(ValueError, match="fps must be positive"):
        Video(np.zeros((2, 4, 4, 3), np.uint8), 0.0, "x")
    with pytest.raises(ValueError, match="video"):
        OpenAIVLM(model="m", base_url="http://127.0.0.1:9/v1", video="gif")


# -- repair turns: an invalid reply is shown its validation error once, in the same conversation -------------
VALID = {
    "Prediction": replies.prediction(
        objects=["square"], physics="inertia", prompt="The square keeps sliding right."
    ),
    "Critique": replies.critique(score=0.8),
    "Rewrite": replies.rewrite(reasoning="fine", prompt="The square slides right."),
}
#: Valid JSON, invalid Prediction: pydantic says "prompt: String should have at least 1 character".
EMPTY_PROMPT = json.dumps(replies.prediction(objects=["square"], prompt=""))
VALIDATION_ERROR = "prompt: String should have at least 1 character"


def title(request: dict[str, Any]) -> str:
    return str(request["response_format"]["json_schema"]["schema"]["title"])


def answer_by_role(server: ScriptedServer, bad_predictions: list[str]) -> None:
    """Each role gets valid JSON, except the first ``len(bad_predictions)`` Prediction requests."""
    bad = iter(bad_predictions)

    def answer() -> Reply:
        role = title(server.requests[-1])
        text = next(bad, None) if role == "Prediction" else None
        return completion(text or json.dumps(VALID[role]))

    server.script = [answer]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    return build_tiny_dataset(tmp_path_factory.mktemp("data"), n_scenarios=1)


def refine(
    dataset: DatasetLayout, server: ScriptedServer, run_dir: Path, grounding: bool = True
) -> dict[str, Any]:
    from agent.refine import run_refinement
    from agent.runs import RunConfig

    config = RunConfig(
        dataset=str(dataset.root),
        fps=8,
        loops=1,
        seeds=1,
        scenarios=["2"],
        score=False,
        grounding=grounding,
        vlm="openai",
        vlm_options={
            "model": "tiny-test-model",
            "base_url": server.url,
            "api_key_env": "PHYSREFINE_TEST_KEY",
        },
    )
    return run_refinement(config, run_dir)


def vlm_calls(run_dir: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    return [e for e in events if e["node"] == "vlm_call"]


def test_an_invalid_reply_is_repaired_in_the_same_node_attempt(
    server: ScriptedServer, fake_key: str, dataset: DatasetLayout, tmp_path: Path
) -> None:
    answer_by_role(server, [EMPTY_PROMPT])
    summary = refine(dataset, server, tmp_path / "run")
    # One predict attempt: the question, then the repair turn; no retry by the node's policy.
    assert [title(r) for r in server.requests] == ["Prediction", "Prediction", "Critique"]
    first, repair = server.requests[0]["messages"], server.requests[1]["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[0] == first[0]  # the same question, images included
    assert repair[1]["content"] == EMPTY_PROMPT
    assert VALIDATION_ERROR in repair[2]["content"] and "Prediction" in repair[2]["content"]
    assert "response_format" in server.requests[1]
    (scenario,) = (tmp_path / "run" / "scenarios").iterdir()
    prediction = json.loads((scenario / "loop_1" / "prediction.json").read_text())
    assert prediction["prompt"] == VALID["Prediction"]["prompt"]
    assert not (scenario / "loop_1" / "prediction.failed.json").exists()
    # The repair turn is a call like any other: counted in usage and traced (as the second user turn).
    assert [(e["schema"], e["turn"]) for e in vlm_calls(tmp_path / "run")] == [
        ("Prediction", 1),
        ("Prediction", 2),
        ("Critique", 1),
    ]
    assert summary["usage"]["calls"] == 3 and summary["usage"]["tokens"] == 3 * 1200
    written = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert FAKE_KEY.encode() not in written


def test_a_reply_still_invalid_after_repair_raises_with_both_raw_texts(
    server: ScriptedServer, fake_key: str
) -> None:
    server.script = [completion(EMPTY_PROMPT), completion("Sorry, here it is: {prompt: none}")]
    scene = make_scene("A square slides.", "v2v", 8.0, 8, np.full((2, 16, 16, 3), 90, np.uint8))
    reasoner = VLMReasoner(make_vlm(server), PromptSet("default"))
    with pytest.raises(ReplyParseError, match="after a repair turn") as failure:
        reasoner.predict(scene)
    assert len(server.requests) == 2  # one repair turn, not more
    assert failure.value.raw == "Sorry, here it is: {prompt: none}" and failure.value.schema == "Prediction"
    assert VALIDATION_ERROR in str(failure.value)
    cause = failure.value.__cause__
    assert isinstance(cause, ReplyParseError) and cause.raw == EMPTY_PROMPT


def test_the_node_retries_a_reply_the_repair_did_not_fix(
    server: ScriptedServer, fake_key: str, dataset: DatasetLayout, tmp_path: Path
) -> None:
    answer_by_role(server, [EMPTY_PROMPT] * 6)
    refine(dataset, server, tmp_path / "run")
    # The node's RetryPolicy (3 attempts) still applies, each attempt with its one repair turn.
    assert [title(r) for r in server.requests] == ["Prediction"] * 6 + ["Critique"]
    assert [len(r["messages"]) for r in server.requests[:6]] == [1, 3] * 3
    (scenario,) = (tmp_path / "run" / "scenarios").iterdir()
    failed = json.loads((scenario / "loop_1" / "prediction.failed.json").read_text())
    assert failed["raw"] == EMPTY_PROMPT and "after a repair turn" in failed["error"]
    assert len(vlm_calls(tmp_path / "run")) == 7


# -- motion grounding: the tracker's summary reaches a real VLM's prompts only when enabled -----------------
@pytest.fixture(scope="module")
def moving_suite(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    """Two-ball collision: the red ball is already rolling right before the switch frame."""
    return build_suite(
        tmp_path_factory.mktemp("suite") / "suite",
        scenarios=["synthetic-two-ball-collision"],
        fps=8,
        size=(96, 54),
        jobs=1,
    )


def prompt_text(request: dict[str, Any]) -> str:
    content = request["messages"][0]["content"]
    return str(content if isinstance(content, str) else content[0]["text"])


@pytest.mark.parametrize("grounding", [True, False], ids=["grounding", "no-grounding"])
def test_motion_grounding_reaches_the_critique_prompt_only_when_enabled(
    server: ScriptedServer, fake_key: str, moving_suite: DatasetLayout, tmp_path: Path, grounding: bool
) -> None:
    # What the tracker measures on the scenario's conditioning clip, computed here independently of the run.
    (row,) = [r for r in moving_suite.take1_rows() if r.id == 2]
    prefix, _ = read_video(moving_suite.conditioning_video(row, 8))
    scene = make_scene(row.description, "v2v", 8.0, 40, prefix)
    prefix_text = scene.prefix_motion.grounding_text("before the switch frame")
    assert (
        "the red ball: at the end moving right, at 4" in prefix_text
    )  # a real measurement, not "no objects"

    answer_by_role(server, [])
    refine(moving_suite, server, tmp_path / "run", grounding=grounding)
    texts = {title(r): prompt_text(r) for r in server.requests}
    assert set(texts) == {"Prediction", "Critique"}
    critique = texts["Critique"]
    (attempt,) = (tmp_path / "run").glob("scenarios/*/attempts/*.mp4")
    attempt_text = scene.attempt_motion(read_video(attempt)[0]).grounding_text("generated continuation")
    assert "the red ball" in attempt_text and "the blue ball" in attempt_text
    assert (prefix_text in critique) is grounding
    assert (attempt_text in critique) is grounding  # and the attempt's own tracker summary
    assert ("Measured motion" in critique) is grounding
    assert (prefix_text in texts["Prediction"]) is grounding
    assert row.description in critique  # the rest of the prompt is there either way
