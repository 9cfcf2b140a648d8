"""Tiny random-weight diffusers pipelines built offline from the real classes, for tests.

Each builder constructs one family's pipeline at a tiny config (as diffusers' own fast tests do), with a T5
tokenizer built in memory from a vocab list (no hub) and ``CLIPImageProcessorPil`` (torchvision is absent),
then saves it with ``save_pretrained`` to a folder so tests load it back through exactly the adapters'
``from_pretrained(folder)`` path. Random weights produce noise: these models check contracts, not quality.

Importing this module imports torch, diffusers and transformers (the ``[models]`` extra); test modules that
use it guard with ``pytest.importorskip`` first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

_WORDS = ["the", "a", "ball", "falls", "rolls", "down", "table", "block", "water", "pours", "red", "blue"]


def tiny_t5(dim: int = 32) -> tuple[Any, Any]:
    """A T5 tokenizer built from an in-memory unigram vocab, and a matching tiny random T5 encoder."""
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(ch, -2.0 - i * 0.01) for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz.,▁")]
    vocab += [("▁" + word, -1.0) for word in _WORDS]
    tokenizer = transformers.T5Tokenizer(vocab=vocab, extra_ids=0)
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=len(tokenizer),
        d_model=dim,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return tokenizer, transformers.T5EncoderModel(config).eval()


def _wan_vae(**overrides: Any) -> Any:
    torch.manual_seed(0)
    kwargs: dict[str, Any] = dict(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    kwargs.update(overrides)
    return diffusers.AutoencoderKLWan(**kwargs)


def _wan_transformer(cls: Any = None, **overrides: Any) -> Any:
    torch.manual_seed(0)
    kwargs: dict[str, Any] = dict(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    kwargs.update(overrides)
    return (cls or diffusers.WanTransformer3DModel)(**kwargs)


def build_wan21(folder: Path) -> Path:
    tokenizer, text_encoder = tiny_t5()
    torch.manual_seed(0)
    image_encoder = transformers.CLIPVisionModelWithProjection(
        transformers.CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    pipe = diffusers.WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=_wan_vae(),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=transformers.CLIPImageProcessorPil(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=_wan_transformer(image_dim=4),
    )
    pipe.save_pretrained(folder)
    return folder


def build_wan22_a14b(folder: Path) -> Path:
    tokenizer, text_encoder = tiny_t5()
    pipe = diffusers.WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=_wan_vae(),
        scheduler=diffusers.UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
        transformer=_wan_transformer(),
        transformer_2=_wan_transformer(),
        boundary_ratio=0.875,
    )
    pipe.save_pretrained(folder)
    return folder


def build_wan22_5b(folder: Path) -> Path:
    tokenizer, text_encoder = tiny_t5()
    vae = _wan_vae(
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
    )
    pipe = diffusers.WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=diffusers.UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
        transformer=_wan_transformer(in_channels=48, out_channels=48),
        expand_timesteps=True,
    )
    pipe.save_pretrained(folder)
    return folder


def build_wan_vace(folder: Path) -> Path:
    tokenizer, text_encoder = tiny_t5()
    transformer = _wan_transformer(
        diffusers.WanVACETransformer3DModel,
        in_channels=16,
        num_layers=3,
        vace_layers=[0, 2],
        vace_in_channels=96,
    )
    pipe = diffusers.WanVACEPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=_wan_vae(),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return folder


def build_ltx(folder: Path) -> Path:
    tokenizer, text_encoder = tiny_t5()
    torch.manual_seed(0)
    transformer = diffusers.LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    pipe = diffusers.LTXConditionPipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return folder


def build_cogvideox(folder: Path, v15: bool = False) -> Path:
    tokenizer, text_encoder = tiny_t5()
    torch.manual_seed(0)
    layout: dict[str, Any] = (
        # 1.5: the rotary grid is cropped to sample_height x sample_width latents, so leave room.
        dict(patch_size_t=2, use_learned_positional_embeddings=False, ofs_embed_dim=2, sample_frames=17)
        | dict(sample_width=8, sample_height=8)
        if v15
        else dict(use_learned_positional_embeddings=True, sample_frames=9, sample_width=2, sample_height=2)
    )
    transformer = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
        **layout,
    )
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    pipe = diffusers.CogVideoXImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=diffusers.CogVideoXDDIMScheduler(),
    )
    pipe.save_pretrained(folder)
    return folder


def build_svd(folder: Path) -> Path:
    torch.manual_seed(0)
    unet = diffusers.UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )
    torch.manual_seed(0)
    image_encoder = transformers.CLIPVisionModelWithProjection(
        transformers.CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            # SVD always resizes the image to 224x224 for CLIP before the feature extractor.
            image_size=224,
            intermediate_size=37,
            patch_size=14,
        )
    )
    pipe = diffusers.StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=transformers.CLIPImageProcessorPil(crop_size=32, size=32),
    )
    pipe.save_pretrained(folder)
    return folder


#: Folder name -> builder; the folder name is the registered generator name where there is one.
BUILDERS: dict[str, Callable[[Path], Path]] = {
    "wan2.1-i2v": build_wan21,
    "wan2.2-i2v-a14b": build_wan22_a14b,
    "wan2.2-ti2v-5b": build_wan22_5b,
    "wan-vace": build_wan_vace,
    "ltx-condition": build_ltx,
    "cogvideox-i2v": build_cogvideox,
    "cogvideox1.5-i2v": lambda folder: build_cogvideox(folder, v15=True),
    "svd": build_svd,
}

_BUILT: dict[str, Path] = {}


def tiny_folder(name: str, factory: pytest.TempPathFactory) -> Path:
    """The folder of tiny pipeline ``name``, built on first use and shared by every test module of the session."""
    if name not in _BUILT:
        _BUILT[name] = BUILDERS[name](factory.mktemp("tiny-diffusers") / name)
    return _BUILT[name]
