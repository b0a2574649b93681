"""MuQ from local weights: release layout round trip, contract, errors, and independent references.

Tiny random weights are saved in the release layout (``model.`` prefix, pretraining-only tensors, a
config.json shaped like the Hub one) and loaded back through the registry. ``transformers``'
Wav2Vec2-Conformer (what MuQ itself builds on) is the independent reference for the conformer blocks and
for the large model's key names / shapes; librosa is the reference for the dB-mel front-end.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from musicrep import models
from musicrep.models.base import WeightsError
from musicrep.models.checkpoints.muq import MUQ_PRESETS, MuQ

STAT = {"melspec_2048_cnt": 1000, "melspec_2048_mean": 6.77, "melspec_2048_std": 18.4}


def _emb(rep, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return rep.embed(x)


def _release_config(**top) -> dict:
    """A config.json shaped like the released one (MuQConfig dataclass dump with a full w2v2_config)."""
    t = MUQ_PRESETS["tiny"]
    w2v2 = {"hidden_act": "swish", "num_attention_heads": t["num_attention_heads"], "hidden_size": 1024,
            "num_hidden_layers": 24, "intermediate_size": t["intermediate_size"], "layer_norm_eps": 1e-5,
            "conv_depthwise_kernel_size": t["conv_depthwise_kernel_size"], "position_embeddings_type": "rotary",
            "rotary_embedding_base": 10000, "hidden_dropout": 0.1, "model_type": "wav2vec2-conformer"}
    cfg = {"label_rate": 25, "num_codebooks": 1, "codebook_dim": 16, "codebook_size": 4096,
           "features": ["melspec_2048"], "hop_length": 240, "n_mels": t["n_mels"], "conv_dim": t["conv_dim"],
           "encoder_dim": t["encoder_dim"], "encoder_depth": t["encoder_depth"], "mask_hop": 0.4, "mask_prob": 0.6,
           "is_flash": False, "stat": STAT, "w2v2_config": w2v2, "use_rvq_target": True, "use_vq_target": False,
           "use_encodec_target": False, "rvq_ckpt_path": None, "recon_loss_ratio": None, "resume_checkpoint": None,
           "rvq_n_codebooks": 8, "rvq_multi_layer_num": 1}
    cfg.update(top)
    return cfg


def _muq_dir(tmp_path, conformer_state: dict | None = None, drop: str | None = None, rename: tuple | None = None,
             **top) -> MuQ:
    """Tiny MuQ weights + config.json in the release layout; returns the source model."""
    src = MuQ(size="tiny", random_init=True, seed=1, config={"mel_mean": STAT["melspec_2048_mean"],
                                                                 "mel_std": STAT["melspec_2048_std"]})
    with torch.no_grad():
        for mod in src.modules():  # non-trivial BatchNorm statistics, so eval-mode BN is exercised
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
    state = {f"model.{k}": v.contiguous() for k, v in src.state_dict().items()}
    if conformer_state is not None:
        state = {k: v for k, v in state.items() if not k.startswith("model.conformer.")}
        state.update({f"model.conformer.{k}": v.contiguous() for k, v in conformer_state.items()})
    d = MUQ_PRESETS["tiny"]["encoder_dim"]
    # pretraining-only tensors the release carries (Mel-RVQ target, token head, cls token, unused pos conv)
    state["model.rvq.quantizers.0.codebook.weight"] = torch.zeros(1024, 16)
    state["model.linear.weight"] = torch.zeros(4096, d)
    state["model.linear.bias"] = torch.zeros(4096)
    state["model.cls_token"] = torch.zeros(d)
    state["model.conformer.pos_conv_embed.conv.bias"] = torch.zeros(d)
    if drop is not None:
        del state[drop]
    if rename is not None:
        state[rename[1]] = state.pop(rename[0])
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(_release_config(**top)))
    return src


def test_loads_release_layout_contract(tmp_path) -> None:
    src = _muq_dir(tmp_path)
    rep = models.get("muq", weights=str(tmp_path))
    assert rep.sample_rate == 24_000 and rep.frame_rate == 25.0
    assert rep.cfg.mel_mean == 6.77 and rep.cfg.mel_std == 18.4 and rep.cfg.hidden_act == "swish"
    assert rep.layer_names == ["hidden0", "hidden1", "hidden2"] and rep.layer_dims == [32] * 3
    x = torch.randn(3, 36_000) * 0.1
    e = _emb(rep, x)
    assert e.shape == (3, 3, rep.n_frames(36_000), 32) and rep.n_frames(36_000) == 38  # 150 mel frames → 75 → 38
    assert rep.n_frames(24_000) == 25 and _emb(rep, x[:, :24_000]).shape[2] == 25
    torch.testing.assert_close(e, _emb(src, x), atol=1e-5, rtol=1e-4)  # the saved weights are what runs
    assert rep.weights_checksum() == src.weights_checksum()
    torch.testing.assert_close(_emb(rep, x[1:2]), e[1:2], atol=1e-5, rtol=1e-4)  # batch independence
    assert torch.equal(_emb(rep, x), e)  # deterministic
    again = models.get("muq", weights=str(tmp_path / "model.safetensors"))  # the file itself works too
    assert again.id == rep.id and torch.equal(_emb(again, x), e)
    # the last state is the encoder LayerNorm of the last block (per-frame zero mean before its affine)
    ln = rep.conformer.layer_norm
    normed = (e[:, -1] - ln.bias) / ln.weight
    assert normed.mean(-1).abs().max() < 1e-4


def test_pytorch_model_bin_and_sha256(tmp_path) -> None:
    src = _muq_dir(tmp_path)
    state = {f"model.{k}": v for k, v in src.state_dict().items()}
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    rep = models.get("muq", weights=str(tmp_path))
    assert rep.weights_path.endswith("pytorch_model.bin") and rep.weights_checksum() == src.weights_checksum()
    with pytest.raises(WeightsError, match="pytorch_model.bin: checksum mismatch"):
        models.get("muq", weights=str(tmp_path), sha256="0" * 64)


def test_missing_or_mismatched_weights_name_the_file(tmp_path) -> None:
    with pytest.raises(WeightsError, match=r"weights=DIR holding model\.safetensors \(or pytorch_model\.bin\) and config"):
        models.get("muq")
    with pytest.raises(WeightsError, match=str(tmp_path / "model.safetensors")):
        models.get("muq", weights=str(tmp_path))
    key = "model.conformer.layers.1.self_attn.linear_q.weight"
    _muq_dir(tmp_path, rename=(key, key.replace("linear_q", "q_proj")))
    with pytest.raises(WeightsError, match=r"model\.safetensors: weights do not fit MuQ.*missing conformer\.layers\.1"
                                           r"\.self_attn\.linear_q\.weight.*unexpected conformer\.layers\.1\.self_attn"
                                           r"\.q_proj\.weight"):
        models.get("muq", weights=str(tmp_path))
    _muq_dir(tmp_path, drop="model.conv.linear.bias")
    with pytest.raises(WeightsError, match=r"model\.safetensors: .*missing conv\.linear\.bias"):
        models.get("muq", weights=str(tmp_path))
    _muq_dir(tmp_path, encoder_dim=48)  # config.json says another width than the tensors have
    with pytest.raises(WeightsError, match=r"model\.safetensors: .*shape of"):
        models.get("muq", weights=str(tmp_path))
    cfg = _release_config()
    del cfg["stat"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"config\.json: no stat\.melspec_2048_mean"):
        models.get("muq", weights=str(tmp_path))
    (tmp_path / "config.json").unlink()
    with pytest.raises(WeightsError, match=str(tmp_path / "config.json")):
        models.get("muq", weights=str(tmp_path))


def test_config_override_without_config_json(tmp_path) -> None:
    src = _muq_dir(tmp_path)
    (tmp_path / "config.json").unlink()
    rep = models.get("muq", weights=str(tmp_path), size="tiny", config={"mel_mean": 6.77, "mel_std": 18.4})
    x = torch.randn(1, 12_000) * 0.1
    torch.testing.assert_close(_emb(rep, x), _emb(src, x), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="n_mel"):
        models.get("muq", size="tiny", random_init=True, config={"n_mel": 8})


def test_random_twin_is_seeded_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    a = models.get("muq", size="tiny", random_init=True, seed=5)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3)), "building muq changed the global RNG state"
    b = models.get("muq", size="tiny", random_init=True, seed=5)
    c = models.get("muq", size="tiny", random_init=True, seed=6)
    assert a.id == b.id != c.id


def test_50hz_variant_frames() -> None:
    rep = MuQ(size="tiny", random_init=True, config={"label_rate": 50})
    assert rep.frame_rate == 50.0
    e = _emb(rep, torch.randn(2, 24_000) * 0.1)
    assert e.shape[2] == rep.n_frames(24_000) == 50


def test_mel_front_end_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rep = MuQ(size="tiny", random_init=True, config={"n_mels": 128})
    x = torch.randn(1, 24_000) * 0.1
    ref = librosa.power_to_db(librosa.feature.melspectrogram(
        y=x[0].numpy(), sr=24_000, n_fft=2048, hop_length=240, n_mels=128, htk=True, norm=None, power=2.0,
        pad_mode="reflect"), ref=1.0, amin=1e-10, top_db=None)
    with torch.no_grad():
        mel = rep.preprocessor_melspec_2048(x)[0].numpy()
    assert mel.shape == ref.shape and abs(mel - ref).max() < 1e-3
    assert not any(k.startswith("preprocessor") for k in rep.state_dict())  # not in the release either


def _hf_conformer_config(transformers, **kw):
    t = MUQ_PRESETS["tiny"]
    hc = transformers.Wav2Vec2ConformerConfig(
        hidden_size=t["encoder_dim"], num_hidden_layers=t["encoder_depth"],
        num_attention_heads=t["num_attention_heads"],
        intermediate_size=t["intermediate_size"], conv_depthwise_kernel_size=t["conv_depthwise_kernel_size"],
        position_embeddings_type="rotary", hidden_act="swish", hidden_dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, conformer_conv_dropout=0.0, layerdrop=0.0)
    for k, v in kw.items():
        setattr(hc, k, v)
    hc._attn_implementation = "eager"
    return hc


def test_conformer_matches_transformers(tmp_path) -> None:
    """The released encoder is transformers' Wav2Vec2ConformerEncoder (rotary, swish): compare block by block."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.wav2vec2_conformer import modeling_wav2vec2_conformer as w2c

    torch.manual_seed(0)
    enc = w2c.Wav2Vec2ConformerEncoder(_hf_conformer_config(transformers)).eval()
    with torch.no_grad():
        for mod in enc.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
    _muq_dir(tmp_path, conformer_state=enc.state_dict())  # includes embed_positions / pos_conv_embed keys
    rep = models.get("muq", weights=str(tmp_path))
    e = _emb(rep, torch.randn(2, 24_000) * 0.1)
    with torch.no_grad():
        h = e[:, 0]
        rpe = enc.embed_positions(h)
        for i, layer in enumerate(enc.layers[:-1], start=1):  # state i = input of block i+1
            h = layer(h, relative_position_embeddings=rpe)
            torch.testing.assert_close(e[:, i], h, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(e[:, -1], enc(e[:, 0]).last_hidden_state, atol=2e-5, rtol=1e-4)


def test_large_preset_matches_release_key_names_and_shapes() -> None:
    """MuQ-large-msd-iter = conv subsampling (128 mels, 512 ch) + 12-layer 1024-d rope conformer: every tensor of
    our large model has the name and shape transformers gives the released encoder (built on the meta device)."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.wav2vec2_conformer import modeling_wav2vec2_conformer as w2c

    with torch.device("meta"):
        ours = MuQ(size="large", random_init=True)
        hc = _hf_conformer_config(transformers, hidden_size=1024, num_hidden_layers=12, num_attention_heads=16,
                                  intermediate_size=4096, conv_depthwise_kernel_size=31)
        ref = w2c.Wav2Vec2ConformerEncoder(hc)
    assert ours.n_layers == 13 and ours.frame_rate == 25.0 and ours.sample_rate == 24_000
    assert 300e6 < ours.n_params < 330e6  # "~300M" (the release adds the 4M-parameter token head)
    mine = {k[len("conformer."):]: tuple(v.shape) for k, v in ours.state_dict().items() if k.startswith("conformer.")}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()
              if not k.startswith(("pos_conv_embed.", "embed_positions."))}
    assert mine == theirs
    conv = {k: tuple(v.shape) for k, v in ours.state_dict().items() if k.startswith("conv.")}
    assert conv["conv.linear.weight"] == (1024, 512 * 128 // 4)
    assert conv["conv.conv.0.conv1.weight"] == (512, 1, 3, 3) and conv["conv.conv.1.conv3.weight"] == (512, 512, 3, 3)
    assert "conv.conv.1.bn3.running_var" in conv


def test_registered() -> None:
    entry = {e.name: e for e in models.entries()}["muq"]
    assert entry.family == "external" and entry.available() == (True, "")
