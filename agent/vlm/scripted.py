"""``scripted``: a fake VLM that answers from a list, for tests and dry runs. Not a model.

Replies are consumed in order and the last one repeats; ``"!error"`` raises :class:`VLMError` (a transport
failure). Typical scripts mix a valid JSON reply, a fenced one, a malformed one and a refusal.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from agent.vlm.base import Message, VLMError, VLMReply


class ScriptedVLM:
    """Answers with ``replies`` one after another (the last one repeats); records what it was sent.

    Args:
        replies: Reply texts, or a JSON list of them (so ``--vlm-opt replies=[...]`` works from the CLI).

    >>> vlm = ScriptedVLM(["first", "second"])
    >>> [vlm.chat([Message("user", "hi")]).text for _ in range(3)]
    ['first', 'second', 'second']
    """

    name = "scripted"

    def __init__(self, replies: Sequence[str] | str = ("{}",), **unused: object) -> None:
        if isinstance(replies, str):
            replies = json.loads(replies)
        if not replies:
            raise ValueError("ScriptedVLM needs at least one reply")
        self.replies = [str(r) for r in replies]
        self.calls: list[list[Message]] = []
        self._lock = threading.Lock()

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Return the next scripted reply."""
        with self._lock:
            index = min(len(self.calls), len(self.replies) - 1)
            self.calls.append(list(messages))
        text = self.replies[index]
        if text == "!error":
            raise VLMError("scripted transport failure")
        return VLMReply(text=text, model="scripted")
