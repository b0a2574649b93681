"""Encoders, handcrafted representations and the reps/embed CLI.

Every registered PyTorch encoder (small size, batch 2) is held to the representation contract: shape
and exact frame rate on 3 s and 10 s inputs, layer bookkeeping, a training step that moves parameters,
a deterministic random twin per seed, batch independence, weights round-trip with checksum. Each
``paper`` size builds and takes one forward+backward step. Handcrafted features are compared with
librosa (the key and tempo baselines built on them are tested in test_probe_keyprofile.py and
test_rhythm.py).
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import musicrep.models as M
from musicrep.cli import app
from musicrep.frontends import CQT
from musicrep.models import handcrafted
from musicrep.models.base import WeightsError
from musicrep.models.cli import parse_layers, parse_opts

SR = 16_000
ENCODERS = ["vgg", "musicnn", "ast", "samplecnn", "tmae", "nfnet", "conformer"]
HANDCRAFTED = ["mfcc", "chroma", "chroma-cqt", "cqt", "mfcc-stats", "chroma-stats", "cqt-stats"]


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic notes with vibrato over coloured noise (deterministic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for i, f0 in enumerate(rng.uniform(100, 600, size=4)):
        env = np.clip(np.sin(np.pi * (t / seconds * 2 - i * 0.4)), 0, None)
        phase = 2 * np.pi * f0 * t + 0.3 * np.sin(2 * np.pi * 5 * t)
        for h in range(1, 6):
            y += env * 0.2 / h * np.sin(h * phase)
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same")
    return (0.5 * y / (np.abs(y).max() + 1e-9) + 0.05 * noise).astype(np.float32)


@pytest.fixture(scope="module")
def batch3s() -> torch.Tensor:
    return torch.from_numpy(np.stack([music_like(3.0, 0), music_like(3.0, 1)]))


def test_registry_has_every_required_name() -> None:
    assert set(ENCODERS + HANDCRAFTED) <= set(M.names())
    with pytest.raises(KeyError, match="unknown representation 'nope'"):
        M.get("nope")


# ---------------------------------------------------------------- encoders (small)

@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("seconds", [3.0, 10.0])
def test_encoder_shape_layers_and_frame_rate(name: str, seconds: float) -> None:
    rep = M.get(name, size="small", seed=0)
    n = int(seconds * SR)
    x = torch.from_numpy(np.stack([music_like(seconds, 0), music_like(seconds, 1)]))
    with torch.inference_mode():
        layers = rep.forward_layers(x)
        out = rep.embed(x)
    t = round(seconds * rep.frame_rate)
    assert rep.n_frames(n) == t  # frame_rate is exact for the output length
    assert rep.sample_rate == SR and rep.window_seconds == 3.0
    assert len(layers) == rep.n_layers == len(rep.layer_names) == len(rep.layer_dims)
    assert [lay.shape[-1] for lay in layers] == rep.layer_dims
    assert out.shape == (2, rep.n_layers, t, max(rep.layer_dims))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    for i, d in enumerate(rep.layer_dims):  # padding beyond a layer's true width is zero
        assert not out[:, i, :, d:].any()
        assert out[:, i, :, :d].abs().sum() > 0


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_training_step_changes_parameters(name: str, batch3s: torch.Tensor) -> None:
    rep = M.get(name, size="small", seed=0)
    assert 50_000 < rep.n_params < 3_000_000
    rep.train()
    before = {k: v.detach().clone() for k, v in rep.named_parameters()}
    assert all(p.requires_grad for p in rep.parameters())  # fixed front-ends hold no parameters
    opt = torch.optim.Adam(rep.parameters(), lr=1e-2)
    # two steps: NFNet's residual branches start behind a zero skip gain, so only the second step
    # reaches them (the first moves the gains); every other family moves everything in one step
    for _ in range(2):
        opt.zero_grad()
        loss = sum(layer.square().mean() for layer in rep.forward_layers(batch3s))
        loss.backward()
        grads = [p.grad for p in rep.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        opt.step()
    changed = [k for k, v in rep.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) >= 0.9 * len(before), sorted(set(before) - set(changed))


@pytest.mark.parametrize("name", ENCODERS)
def test_random_twin_is_deterministic_per_seed(name: str, batch3s: torch.Tensor) -> None:
    torch.manual_seed(123)
    a, b, c = (M.get(name, size="small", seed=s) for s in (0, 0, 1))
    after = torch.rand(3)  # drawn after building: equals a fresh seed-123 draw only if building left the RNG alone
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3)), "building a twin must not disturb the global RNG"
    assert a.id == b.id != c.id
    assert a.id.startswith(f"{name}-")
    with torch.inference_mode():
        ea, eb, ec = a.embed(batch3s), b.embed(batch3s), c.embed(batch3s)
    assert torch.equal(ea, eb)
    assert not torch.allclose(ea, ec)


@pytest.mark.parametrize("name", ENCODERS + HANDCRAFTED)
def test_batch_independence(name: str) -> None:
    rep = M.get(name, size="small", seed=0)  # handcrafted features accept and ignore size/seed
    items = torch.from_numpy(np.stack([music_like(3.0, s) for s in range(3)]))
    with torch.inference_mode():
        alone = rep.embed(items[:1])
        with_1 = rep.embed(items[[0, 1]])
        with_2 = rep.embed(items[[2, 0]])
    scale = alone.abs().max()
    torch.testing.assert_close(with_1[0], alone[0], atol=1e-4 * scale, rtol=1e-4)
    torch.testing.assert_close(with_2[1], alone[0], atol=1e-4 * scale, rtol=1e-4)


@pytest.mark.parametrize("name", ENCODERS)
def test_weights_round_trip_and_checksum(name: str, tmp_path: Path, batch3s: torch.Tensor) -> None:
    from safetensors.torch import save_file

    src = M.get(name, size="small", seed=1)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    loaded = M.get(name, size="small", seed=0, weights=path)
    assert loaded.id == src.id  # the id follows the weights, not the seed they were drawn with
    with torch.inference_mode():
        torch.testing.assert_close(loaded.embed(batch3s), src.embed(batch3s))
    path.with_suffix(".safetensors.sha256").write_text("0" * 64)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        M.get(name, size="small", weights=path)
    with pytest.raises(WeightsError, match="not found"):
        M.get(name, size="small", weights=tmp_path / "missing.safetensors")


def test_unknown_size_and_config_key_are_named() -> None:
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        M.get("vgg", size="huge")
    with pytest.raises(ValueError, match="chanels"):
        M.get("vgg", chanels=[8])


def test_tmae_masking_keeps_the_requested_fraction() -> None:
    rep = M.get("tmae", size="small")
    x = torch.from_numpy(music_like(3.0))[None].repeat(2, 1)
    g = torch.Generator().manual_seed(0)
    spec = rep.prepare(x)
    latent, mask, restore = rep.forward_masked(spec, mask_ratio=0.75, generator=g)
    targets = rep.patch_targets(spec)
    n = targets.shape[1]
    assert mask.shape == restore.shape == (2, n)
    assert latent.shape == (2, round(n * 0.25), rep.layer_dims[-1])
    assert (mask.sum(dim=1) == n - round(n * 0.25)).all()
    assert not torch.equal(mask[0], mask[1])  # each item draws its own mask
    assert targets.shape[2] == 16 * 16


# ---------------------------------------------------------------- encoders (paper)

PAPER_PARAMS = {  # (low, high) bounds on the parameter count of each paper-size model
    "vgg": (3e6, 5e6), "musicnn": (5e6, 9e6), "ast": (80e6, 90e6), "samplecnn": (1.5e6, 3e6),
    "tmae": (80e6, 90e6), "nfnet": (61.9e6, 62.9e6), "conformer": (250e6, 350e6),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ENCODERS)
def test_paper_size_builds_and_takes_one_step(name: str) -> None:
    rep = M.get(name, size="paper", seed=0)
    lo, hi = PAPER_PARAMS[name]
    assert lo <= rep.n_params <= hi, rep.n_params
    rep.train()
    x = torch.from_numpy(np.stack([music_like(3.0, s) for s in range(2)]))
    if name in ("nfnet", "conformer", "ast", "tmae"):  # the big ones: one item, once
        x = x[:1] if name == "nfnet" else x[:1, : int(1.5 * SR)]  # transformers: 1.5 s keeps CI time modest
    layers = rep.forward_layers(x)
    assert len(layers) == rep.n_layers and [lay.shape[-1] for lay in layers] == rep.layer_dims
    loss = layers[-1].square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in rep.parameters())


# ---------------------------------------------------------------- handcrafted

def _ref_mfcc(y: np.ndarray, n_deltas: int = 2) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, win_length=400, hop_length=160, n_mels=96,
                                         fmin=0.0, fmax=8000.0, htk=True, pad_mode="constant")
    m = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    return np.concatenate([m] + [librosa.feature.delta(m, order=o) for o in range(1, n_deltas + 1)])


def test_mfcc_representation_matches_librosa() -> None:
    y = music_like(3.0)
    rep = M.get("mfcc")
    out = rep.embed(torch.from_numpy(y)[None])
    ref = _ref_mfcc(y)
    assert out.shape == (1, 1, rep.n_frames(len(y)), 60) == (1, 1, ref.shape[1], 60)
    np.testing.assert_allclose(out[0, 0].numpy().T, ref, atol=1e-3 * np.abs(ref).max() / 100 + 1e-3)
    assert rep.weights_checksum() == "none" and rep.n_params == 0


def test_chroma_and_cqt_representations_match_librosa() -> None:
    y = music_like(3.0, seed=2)
    x = torch.from_numpy(y)[None]
    chroma = M.get("chroma").embed(x)[0, 0].numpy().T
    ref = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=2048, hop_length=160, tuning=0.0, pad_mode="constant")
    np.testing.assert_allclose(chroma, ref, atol=1e-4)
    cqt = M.get("cqt").embed(x)[0, 0].numpy().T
    ref = np.abs(librosa.cqt(y, sr=SR, hop_length=160, fmin=librosa.note_to_hz("C1"), n_bins=84))
    mid = slice(60, -60)
    # librosa's octave-wise resampling differs slightly from our full-rate correlation (see test_frontends)
    assert np.corrcoef(cqt[:, mid].ravel(), np.log(ref[:, mid] + 1e-6).ravel())[0, 1] > 0.98


def test_stats_representations_are_mean_and_std_of_frames() -> None:
    y = music_like(3.0, seed=3)
    x = torch.from_numpy(y)[None]
    for kind in ("mfcc", "chroma", "cqt"):
        frames = M.get(kind).embed(x)[0, 0].numpy()  # [T, D]
        stats = M.get(f"{kind}-stats")
        out = stats.embed(x)
        assert out.shape == (1, 1, 1, 2 * frames.shape[1]) and stats.n_frames(len(y)) == 1
        np.testing.assert_allclose(out[0, 0, 0].numpy(), np.concatenate([frames.mean(0), frames.std(0)]),
                                   rtol=1e-4, atol=1e-4)


def test_chroma_cqt_folds_cqt_power_of_long_filters() -> None:
    y = music_like(3.0, seed=5)
    x = torch.from_numpy(y)[None]
    rep = M.get("chroma-cqt")
    out = rep.embed(x)[0, 0].numpy().T  # [12, T]
    # the CQT front-end with filters twice the semitone length (filter_scale=2): power, folded, max-normalised
    cqt = CQT(sample_rate=SR, filter_scale=2.0)(x)[0].numpy()  # [84, T]
    ref = (cqt**2).reshape(7, 12, -1).sum(axis=0)
    ref /= ref.max(axis=0, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=1e-3)
    # and librosa's CQT with the same filters (A440 tuning) gives the same chroma up to its multirate error
    lib = np.abs(librosa.cqt(y, sr=SR, hop_length=160, fmin=librosa.note_to_hz("C1"), n_bins=84,
                             bins_per_octave=12, filter_scale=2, tuning=0.0))
    lref = (lib**2).reshape(7, 12, -1).sum(axis=0)
    lref /= lref.max(axis=0, keepdims=True)
    np.testing.assert_allclose(out[:, 20:-20], lref[:, 20:-20], atol=0.02)  # librosa pads the edges differently
    assert rep.id != M.get("chroma").id and rep.name == "chroma-cqt"


def test_summary_features_match_librosa_statistics() -> None:
    y = music_like(4.0, seed=4)
    v, names = handcrafted.mfcc_stats(y, SR)
    ref = _ref_mfcc(y, n_deltas=1)
    assert len(v) == len(names) == 80 and names[0] == "mfcc0_mean" and names[-1] == "dmfcc19_std"
    np.testing.assert_allclose(v, np.concatenate([ref.mean(1), ref.std(1)]), rtol=1e-3, atol=1e-2)
    allv, alln = handcrafted.summary_features(y, SR)
    assert len(allv) == len(alln) == 80 + 24 + 168 and len(set(alln)) == len(alln)
    with pytest.raises(KeyError, match="unknown handcrafted feature"):
        handcrafted.summary_features(y, SR, which=("zcr",))


def test_cqt_chroma_finds_the_pitch_class_of_low_and_high_tones() -> None:
    t = np.arange(SR) / SR
    for midi in (36, 45, 69, 83):  # C2, A2, A4, B5
        y = np.sin(2 * np.pi * librosa.midi_to_hz(midi) * t).astype(np.float32)
        c = M.get("chroma-cqt").embed(torch.from_numpy(y)[None])[0, 0].numpy().mean(axis=0)
        assert int(np.argmax(c)) == midi % 12
    v, names = handcrafted.chroma_stats(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    assert names[int(np.argmax(v[:12]))] == "chroma_A_mean"


# ---------------------------------------------------------------- CLI

def test_parse_layers() -> None:
    assert parse_layers("all", 4) == [0, 1, 2, 3]
    assert parse_layers("0,2,-1", 4) == [0, 2, 3]
    with pytest.raises(ValueError, match="out of range"):
        parse_layers("7", 4)
    with pytest.raises(ValueError, match="not an integer"):
        parse_layers("a", 4)


def test_parse_opts_reads_json_values_and_names_bad_pairs() -> None:
    assert parse_opts(["n_mfcc=13", "module=hearbaseline", "channels=[8,16]"]) == {
        "n_mfcc": 13, "module": "hearbaseline", "channels": [8, 16]}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_opts(["oops"])


def test_embed_cli_passes_opts_to_the_constructor(tmp_path: Path) -> None:
    wav = tmp_path / "clip.wav"
    sf.write(wav, music_like(3.0), SR, subtype="FLOAT")
    out = tmp_path / "e.npy"
    res = CliRunner().invoke(app, ["embed", str(wav), "--rep", "vgg", "--opt", "channels=[8,8]", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert np.load(out).shape == (2, 3 * 25, 8)  # two blocks pool time twice: 100 Hz / 4
    res = CliRunner().invoke(app, ["embed", str(wav), "--rep", "vgg", "--opt", "chanels=[8]", "--out", str(out)])
    assert res.exit_code == 2 and "chanels" in res.output


def test_reps_list_shows_every_representation() -> None:
    res = CliRunner().invoke(app, ["reps", "list"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ENCODERS + HANDCRAFTED:
        assert name in res.output
    vgg_params = f"{M.get('vgg', size='small').n_params:,}"
    assert any(line.split("│")[1].strip() == "vgg" and vgg_params in line for line in res.output.splitlines()
               if line.count("│") > 2)


@pytest.mark.parametrize(("rep", "extra"), [("vgg", ["--layers", "all"]), ("musicnn", ["--layers", "0,2"]),
                                            ("mfcc", []), ("samplecnn", ["--seed", "3", "--layers", "-1"])])
def test_embed_cli_writes_windows_times_frames(tmp_path: Path, rep: str, extra: list[str]) -> None:
    y = music_like(7.0)  # the store's windows: 3 s at 0, 2 and 4 s
    wav = tmp_path / "clip.wav"
    sf.write(wav, y, SR, subtype="FLOAT")
    out = tmp_path / "e.npy"
    res = CliRunner().invoke(app, ["embed", str(wav), "--rep", rep, "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    arr = np.load(out)
    r = M.get(rep, **({"seed": 3} if "--seed" in extra else {}))
    layers = parse_layers(extra[extra.index("--layers") + 1] if "--layers" in extra else "all", r.n_layers)
    assert arr.shape == (len(layers), 3 * r.n_frames(3 * SR), max(r.layer_dims)) and arr.dtype == np.float32
    # the first window's frames equal embedding the first 3 s directly
    with torch.inference_mode():
        first = r.embed(torch.from_numpy(y[: 3 * SR])[None])[0, layers].numpy()
    np.testing.assert_allclose(arr[:, : r.n_frames(3 * SR)], first, rtol=1e-4, atol=1e-5)


def test_embed_cli_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    runner = CliRunner()
    res = runner.invoke(app, ["embed", str(bad), "--rep", "vgg", "--out", str(tmp_path / "x.npy")])
    assert res.exit_code == 2 and "bad.wav" in res.output  # a user error: one message, status 2
    wav = tmp_path / "ok.wav"
    sf.write(wav, music_like(1.0), SR)
    res = runner.invoke(app, ["embed", str(wav), "--rep", "nope", "--out", str(tmp_path / "x.npy")])
    assert res.exit_code == 2 and "unknown representation" in res.output
    res = runner.invoke(app, ["embed", str(wav), "--rep", "vgg", "--layers", "9", "--out", str(tmp_path / "x.npy")])
    assert res.exit_code == 2 and "out of range" in res.output


def test_revision_changes_the_id_only_when_raised() -> None:
    """A code change that alters a representation's output bumps ``revision`` so old stores are not reused;
    revision 1 leaves ids exactly as they were before revisions existed."""
    import hashlib
    import json

    from musicrep.models.handcrafted import Handcrafted  # a representation with a config and no weights

    rep = M.get("mfcc")
    cfg = json.dumps(rep.config(), sort_keys=True, default=str)
    assert rep.revision == 1
    assert rep.id == f"{rep.name}-{hashlib.sha256(cfg.encode()).hexdigest()[:8]}-{rep.weights_checksum()[:12]}"
    bumped = M.get("mfcc")
    bumped.revision = 2
    assert bumped.id != rep.id and bumped.id.startswith("mfcc-")
    assert isinstance(rep, Handcrafted)
