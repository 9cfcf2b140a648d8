"""Local transformers VLM with tiny random-weight models built offline and loaded from their folders.

LLaVA (images only) runs everywhere the [models] extra is installed. The Qwen2.5-VL video path needs a video
processor, and transformers' video processors need torchvision: those tests are skipped without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from agent.views import clip_video  # noqa: E402
from agent.vlm import VLMS  # noqa: E402
from agent.vlm.base import Message, Video, VLMError  # noqa: E402
from physics_iq.registry import BackendOptionError  # noqa: E402

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


def rendered_prompts(vlm: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the chat-template text each ``chat`` renders (the real template, returned unchanged)."""
    prompts: list[str] = []
    real = vlm.processor.apply_chat_template

    def spy(*args: Any, **kwargs: Any) -> Any:
        prompts.append(real(*args, **kwargs))
        return prompts[-1]

    monkeypatch.setattr(vlm.processor, "apply_chat_template", spy)
    return prompts


def test_labels_come_right_before_their_image_placeholders(vlm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = rendered_prompts(vlm, monkeypatch)
    labels = tuple(f"generated, t = +{k}.00 s" for k in range(1, 6))
    video = Video(np.zeros((4, 60, 80, 3), np.uint8), 8.0, "the clip")
    reply = vlm.chat([Message("user", "the ball falls", frames(5), labels, video)])
    # Text first, then each kept image's label before its placeholder (5 sampled to 2: the first and the
    # last); this backend was not asked for video, so the clip and its label are left out.
    assert prompts == [
        "<s>user: the ball falls generated, t = +1.00 s <image> generated, t = +5.00 s <image> </s>"
        "<s>assistant: "
    ]
    assert reply.metadata["frames_sent"] == 2 and reply.metadata["video_frames_sent"] == 0


def test_video_with_a_processor_without_a_video_processor_is_refused(tiny_llava: Path) -> None:
    with pytest.raises(BackendOptionError, match=r"video=true, but the processor .* has no video processor"):
        VLMS.resolve("transformers")(model=str(tiny_llava), video="true")


# -- Qwen2.5-VL: images and video -----------------------------------------------------------------------------
_QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Qwen2.5-VL's chat template, reduced to what these tests use (no system prompt, no tools).
_QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>{% else %}{{ c['text'] }}\n"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_qwen25_vl(folder: Path) -> Path:
    """Qwen2.5-VL at a tiny config (2 vision blocks, 2 text layers, 14-px patches, 56x56 pixels at most per
    image or frame), a word-level tokenizer with Qwen's special tokens, Qwen's image and video processors."""
    specials = [*_QWEN_SPECIALS, "<unk>"]
    vocab = {token: i for i, token in enumerate(specials + _WORDS)}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    core.decoder = tokenizers.decoders.WordPiece()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": _QWEN_SPECIALS[1:]})
    pixels = {"min_pixels": 28 * 28, "max_pixels": 56 * 56, "patch_size": 14, "temporal_patch_size": 2}
    processor = transformers.Qwen2_5_VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(merge_size=2, **pixels),
        video_processor=transformers.Qwen2VLVideoProcessor(merge_size=2, **pixels),
        tokenizer=tokenizer,
        chat_template=_QWEN_TEMPLATE,
    )
    config = transformers.Qwen2_5_VLConfig(
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 32,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 28,
            "fullatt_block_indexes": [1],
        },
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]},
            "bos_token_id": 0,
            "eos_token_id": vocab["<|im_end|>"],
            "pad_token_id": 0,
        },
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    torch.manual_seed(0)
    transformers.Qwen2_5_VLForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torchvision", reason="transformers' Qwen2-VL video processor needs torchvision")
    return build_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen") / "qwen2.5-vl")


def generate_kwargs(vlm: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    real_generate = vlm.model.generate

    def spy(**kwargs: Any) -> Any:
        seen.clear()
        seen.update(kwargs)
        return real_generate(**kwargs)

    monkeypatch.setattr(vlm.model, "generate", spy)
    return seen


def test_qwen_gets_labelled_images_then_the_video_with_its_fps(
    tiny_qwen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vlm = VLMS.resolve("transformers")(model=str(tiny_qwen), max_new_tokens="4", max_side="64", video="true")
    prompts = rendered_prompts(vlm, monkeypatch)
    seen = generate_kwargs(vlm, monkeypatch)
    clip = np.stack(frames(10))
    video = clip_video(clip[:1], clip[1:], fps=8.0)
    message = Message("user", "what happens next", frames(2), ("switch frame", "generated"), video)
    reply = vlm.chat([message])
    assert prompts[-1] == (
        "<|im_start|>user\nwhat happens next\nswitch frame\n<|vision_start|><|image_pad|><|vision_end|>"
        "generated\n<|vision_start|><|image_pad|><|vision_end|>"
        f"{video.label}\n<|vision_start|><|video_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
    )
    # 10 frames at 8 fps: 5 temporal patches of 2 frames, each 2/8 s apart (Qwen2.5-VL's temporal positions).
    assert seen["video_grid_thw"].tolist() == [[5, 4, 4]]
    assert seen["second_per_grid_ts"].tolist() == pytest.approx([0.25])
    assert seen["image_grid_thw"].shape[0] == 2
    assert reply.metadata["video_frames_sent"] == 10 and reply.metadata["video_fps"] == 8.0
    # A clip longer than video_frames keeps every k-th frame at fps / k.
    strided = VLMS.resolve("transformers")(
        model=str(tiny_qwen), max_new_tokens="4", max_side="64", video="true", video_frames="4"
    )
    seen = generate_kwargs(strided, monkeypatch)
    assert strided.chat([message]).metadata["video_frames_sent"] == 4  # frames 0, 3, 6, 9 at 8/3 fps
    assert seen["second_per_grid_ts"].tolist() == pytest.approx([0.75])
    assert seen["video_grid_thw"].tolist() == [[2, 4, 4]]
