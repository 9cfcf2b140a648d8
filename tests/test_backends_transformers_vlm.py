"""Local transformers VLM with a tiny random-weight LLaVA built offline and loaded from its folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from agent.vlm import VLMS  # noqa: E402
from agent.vlm.base import Message, VLMError  # noqa: E402

pytestmark = pytest.mark.models
torch.set_num_threads(1)

_CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
    "</s>{% endfor %}{% if add_generation_prompt %}<s>assistant: {% endif %}"
)
_WORDS = [
    "the",
    "a",
    "ball",
    "falls",
    "rolls",
    "down",
    "table",
    "block",
    "water",
    "pours",
    "red",
    "blue",
    "user",
    "assistant",
    "system",
    ":",
    "what",
    "happens",
    "next",
]


def build_tiny_llava(folder: Path) -> Path:
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
    vocab = {token: i for i, token in enumerate(specials + _WORDS)}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    core.decoder = tokenizers.decoders.WordPiece()  # joins tokens with spaces
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_processor = transformers.CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size=32)
    processor = transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=transformers.LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
        ),
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = transformers.LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava") / "llava")


@pytest.fixture(scope="session")
def vlm(tiny_llava: Path) -> Any:
    return VLMS.resolve("transformers")(
        model=str(tiny_llava), max_new_tokens="6", max_frames="2", max_side="64"
    )


def frames(count: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return tuple(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(count))


def test_loads_templates_passes_images_and_returns_new_text(
    vlm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real_generate = vlm.model.generate

    def spy(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return real_generate(**kwargs)

    monkeypatch.setattr(vlm.model, "generate", spy)
    messages = [Message("system", "what happens next"), Message("user", "the ball falls", frames(5))]
    reply = vlm.chat(messages, json_schema={"type": "object"})
    # 5 frames sampled down to 2, each expanded by the processor into (32/8)^2 = 16 image tokens.
    assert seen["pixel_values"].shape == (2, 3, 32, 32)
    assert int((seen["input_ids"] == vlm.processor.tokenizer.convert_tokens_to_ids("<image>")).sum()) == 32
    assert reply.metadata["frames_sent"] == 2
    assert 1 <= reply.completion_tokens <= 6 and reply.prompt_tokens == seen["input_ids"].shape[1]
    assert isinstance(reply.text, str) and reply.text.strip()  # random weights: garbage, but decoded text
    again = vlm.chat(messages)
    assert again.text == reply.text  # greedy decoding is deterministic


def test_text_only_conversation(vlm: Any) -> None:
    reply = vlm.chat([Message("user", "the ball falls")])
    assert reply.metadata["frames_sent"] == 0


def test_bad_options_and_missing_model(tmp_path: Path) -> None:
    cls = VLMS.resolve("transformers")
    with pytest.raises(ValueError, match="max_new_token"):
        cls(model=str(tmp_path), max_new_token="3")
    with pytest.raises(ValueError, match="base_url is for API backends"):
        cls(model=str(tmp_path), base_url="http://127.0.0.1:1/v1")
    with pytest.raises(VLMError, match="could not load"):
        cls(model=str(tmp_path / "missing"))
