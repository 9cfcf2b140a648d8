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

from agent.vlm import VLMS
from agent.vlm.base import Message, VLMError
from agent.vlm.openai_vlm import OpenAIVLM, encode_frame
from tests.openai_server import Reply, ScriptedServer, completion, error

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
