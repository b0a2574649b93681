"""Local-weight adapters: MERT (HuBERT layout), TorchScript files and any torch module.

Tiny random weights are saved in the published layout to a temp dir and loaded back through the registry;
where ``transformers`` is installed, its HubertModel is the independent reference for the MERT forward.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from musicrep import models
from musicrep.models.base import WeightsError
from musicrep.models.checkpoints.mert import MERT, MERT_PRESETS
from musicrep.models.checkpoints.musicfm import MUSICFM_PRESETS


def _emb(rep, x: torch.Tensor) -> torch.Tensor:
    """MERT is an nn.Module (calling it gives the last layer, like every TorchEncoder); embed gives all."""
    with torch.no_grad():
        return rep.embed(x)


def _save_mert(tmp_path, new_style_weight_norm: bool = True, **overrides):
    src = MERT(size="tiny", random_init=True, seed=3, config=overrides or None)
    state = {}
    for k, v in src.state_dict().items():
        if new_style_weight_norm:  # transformers >= 4.40 names the weight-normed conv this way
            k = k.replace("conv.weight_g", "conv.parametrizations.weight.original0")
            k = k.replace("conv.weight_v", "conv.parametrizations.weight.original1")
        state[k] = v.contiguous()
    state["masked_spec_embed"] = torch.zeros(src.cfg.hidden_size)  # pretraining-only parameter, ignored
    save_file(state, str(tmp_path / "model.safetensors"))
    cfg = dict(MERT_PRESETS["tiny"], **overrides)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return src


@pytest.mark.parametrize("new_style", [True, False])
def test_mert_loads_hf_layout_and_reproduces(tmp_path, new_style: bool) -> None:
    src = _save_mert(tmp_path, new_style)
    rep = models.get("mert", weights=str(tmp_path))
    x = torch.randn(2, 16_000) * 0.1
    e = _emb(rep, x)
    torch.testing.assert_close(e, _emb(src, x), atol=1e-6, rtol=1e-5)
    assert e.shape == (2, 3, rep.n_frames(16_000), 32)
    assert rep.frame_rate == 16_000 / math.prod(MERT_PRESETS["tiny"]["conv_stride"])
    assert rep.layer_names == ["hidden0", "hidden1", "hidden2"]
    assert rep.weights_checksum() == src.weights_checksum()
    # batch independence
    torch.testing.assert_close(_emb(rep, x[1:]), e[1:], atol=1e-5, rtol=1e-4)


def test_mert_config_json_sets_sizes(tmp_path) -> None:
    _save_mert(tmp_path, hidden_size=48, num_attention_heads=4, num_hidden_layers=3)
    rep = models.get("mert", weights=str(tmp_path / "model.safetensors"))
    assert rep.layer_dims == [48] * 4 and rep.n_layers == 4
    assert torch.isfinite(_emb(rep, torch.randn(1, 8000))).all()


def test_mert_missing_or_wrong_weights_name_the_file(tmp_path) -> None:
    with pytest.raises(WeightsError, match=str(tmp_path / "model.safetensors")):
        models.get("mert", weights=str(tmp_path))
    with pytest.raises(WeightsError, match="pass weights=FILE"):
        models.get("mert")
    _save_mert(tmp_path)
    (tmp_path / "config.json").unlink()  # falls back to the 95m preset, which the tiny file cannot fit
    with pytest.raises(WeightsError, match="model.safetensors.*do not fit"):
        models.get("mert", weights=str(tmp_path))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        models.get("mert", weights=str(tmp_path), size="tiny", sha256="0" * 64)


@pytest.mark.parametrize("stable", [False, True])
def test_mert_matches_transformers_hubert(tmp_path, stable: bool) -> None:
    transformers = pytest.importorskip("transformers")
    tiny = dict(MERT_PRESETS["tiny"])
    sr = tiny.pop("sample_rate")
    if stable:  # the large-model variant: LayerNorm in every conv, pre-LN transformer
        tiny.update(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
    hc = transformers.HubertConfig(**tiny, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                                   feat_proj_dropout=0.0, layerdrop=0.0)
    torch.manual_seed(0)
    ref = transformers.HubertModel(hc).eval()
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**hc.to_dict(), "sample_rate": sr, "do_normalize": False}))
    rep = models.get("mert", weights=str(tmp_path))
    x = torch.randn(2, 16_000)
    with torch.no_grad():
        out = ref(x, output_hidden_states=True)
    e = _emb(rep, x)
    for i, h in enumerate(out.hidden_states):
        torch.testing.assert_close(e[:, i], h, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(e[:, -1], out.last_hidden_state, atol=2e-5, rtol=1e-4)


def test_mert_random_twin_is_seeded() -> None:
    a = models.get("mert", size="tiny", random_init=True, seed=1)
    b = models.get("mert", size="tiny", random_init=True, seed=1)
    c = models.get("mert", size="tiny", random_init=True, seed=2)
    assert a.id == b.id != c.id


@pytest.mark.parametrize("name", ["mert", "musicfm"])
def test_random_init_leaves_the_global_rng_alone(name: str) -> None:
    """Building a seeded random twin must not reseed torch's global generator (the caller's draws)."""
    torch.manual_seed(123)
    a = models.get(name, size="tiny", random_init=True, seed=5)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3)), f"building {name} changed the global RNG state"
    b = models.get(name, size="tiny", random_init=True, seed=5)
    assert a.id == b.id and a.weights_checksum() == b.weights_checksum()


class TwoLayers(nn.Module):
    """A module with the torch-module convention: [B, samples] → list of [B, T, H] (10 ms frames)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, width, 160, stride=160)
        self.proj = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = torch.relu(self.conv(x[:, None])).transpose(1, 2)
        return [h, self.proj(h)]


def test_torchscript_file(tmp_path) -> None:
    torch.manual_seed(0)
    net = TwoLayers().eval()
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    rep = models.get("torchscript", path=str(path))
    assert rep.frame_rate == 100.0 and rep.layer_dims == [8, 4]
    x = torch.randn(3, 16_000)
    e = rep(x)
    ref = net(x)
    torch.testing.assert_close(e[:, 0], ref[0].detach())
    torch.testing.assert_close(e[:, 1, :, :4], ref[1].detach())
    assert (e[:, 1, :, 4:] == 0).all()
    with pytest.raises(WeightsError, match="nope.pt"):
        models.get("torchscript", path=str(tmp_path / "nope.pt"))


def test_torch_module_with_state_dict(tmp_path) -> None:
    torch.manual_seed(1)
    net = TwoLayers(width=6).eval()
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    rep = models.get("torch-module", module=f"{__name__}:TwoLayers", init={"width": 6},
                     weights=str(tmp_path / "w.safetensors"), layer_names=["conv", "proj"])
    x = torch.randn(2, 8000)
    torch.testing.assert_close(rep(x)[:, 1, :, :4], net(x)[1].detach())
    assert rep.layer_names == ["conv", "proj"] and rep.n_params == sum(p.numel() for p in net.parameters())
    with pytest.raises(WeightsError, match="w.safetensors.*do not fit"):
        models.get("torch-module", module=f"{__name__}:TwoLayers", init={"width": 5},
                   weights=str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match="package.module:ClassName"):
        models.get("torch-module", module="TwoLayers")


def _musicfm_dir(tmp_path, conformer_state: dict | None = None):
    """Tiny MusicFM weights in the published layout (``model.`` prefix, quantizer buffers, stats json)."""
    from musicrep.models.checkpoints.musicfm import MusicFM

    src = MusicFM(size="tiny", random_init=True, seed=1)
    for mod in src.modules():  # non-trivial BatchNorm statistics, so eval-mode BN is exercised
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
    state = {f"model.{k}": v.contiguous() for k, v in src.state_dict().items()}
    if conformer_state is not None:
        state = {k: v for k, v in state.items() if not k.startswith("model.conformer.")}
        state.update({f"model.conformer.{k}": v.contiguous() for k, v in conformer_state.items()})
    state["model.quantizer_melspec_2048_0.random_projection"] = torch.zeros(64, 16)  # ignored target head
    state["model.cls_token"] = torch.zeros(32)
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "msd_stats.json").write_text(json.dumps({"melspec_2048_mean": 6.77, "melspec_2048_std": 18.4}))
    return src


def test_musicfm_loads_layout_and_matches_librosa_mel(tmp_path) -> None:
    librosa = pytest.importorskip("librosa")
    src = _musicfm_dir(tmp_path)
    rep = models.get("musicfm", weights=str(tmp_path), size="tiny")
    assert rep.frame_rate == 25.0 and rep.cfg.mel_mean == 6.77
    x = torch.randn(2, 24_000) * 0.1
    e = _emb(rep, x)
    # tiny has 2 blocks: input, block 1, block 2 after the final LayerNorm (MusicFM's hidden_states)
    assert e.shape == (2, 3, rep.n_frames(24_000), 32) and rep.n_frames(24_000) == 25
    src.cfg = rep.cfg  # same normalisation as the loaded model
    torch.testing.assert_close(e, _emb(src, x), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(_emb(rep, x[:1]), e[:1], atol=1e-5, rtol=1e-4)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(
        y=x[0].numpy(), sr=24_000, n_fft=2048, hop_length=240, n_mels=16, htk=True, norm=None, power=2.0,
        pad_mode="reflect"),
        ref=1.0, amin=1e-10, top_db=None)
    with torch.no_grad():
        mel = rep.preprocessor_melspec_2048(x[:1])[0].numpy()
    assert abs(mel - ref).max() < 1e-3
    (tmp_path / "msd_stats.json").unlink()
    with pytest.raises(WeightsError, match="msd_stats.json"):
        models.get("musicfm", weights=str(tmp_path), size="tiny")


def test_musicfm_conformer_matches_transformers(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.models.wav2vec2_conformer import modeling_wav2vec2_conformer as w2c

    t = MUSICFM_PRESETS["tiny"]
    hc = transformers.Wav2Vec2ConformerConfig(
        hidden_size=t["hidden_size"], num_hidden_layers=t["num_hidden_layers"],
        num_attention_heads=t["num_attention_heads"], intermediate_size=t["intermediate_size"],
        conv_depthwise_kernel_size=t["conv_depthwise_kernel_size"], position_embeddings_type="rotary",
        hidden_act="swish",
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, conformer_conv_dropout=0.0, layerdrop=0.0)
    hc._attn_implementation = "eager"
    torch.manual_seed(0)
    enc = w2c.Wav2Vec2ConformerEncoder(hc).eval()
    for mod in enc.modules():
        if isinstance(mod, nn.BatchNorm1d):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
    _musicfm_dir(tmp_path, conformer_state=enc.state_dict())
    rep = models.get("musicfm", weights=str(tmp_path), size="tiny")
    e = _emb(rep, torch.randn(2, 24_000) * 0.1)
    with torch.no_grad():
        h = e[:, 0]
        rpe = enc.embed_positions(h)
        for i, layer in enumerate(enc.layers[:-1], start=1):
            h = layer(h, relative_position_embeddings=rpe)
            torch.testing.assert_close(e[:, i], h, atol=2e-5, rtol=1e-4)
        # one layer per hidden state: input + every block, the last one through the encoder's LayerNorm
        assert e.shape[1] == len(enc.layers) + 1
        torch.testing.assert_close(e[:, -1], enc(e[:, 0]).last_hidden_state, atol=2e-5, rtol=1e-4)
