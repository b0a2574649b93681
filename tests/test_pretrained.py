"""Offline pretrained models: each loads its wheel-bundled weights, gives finite [B, L, T, H] at its frame
rate, and agrees with the package's own pipeline (torchcrepe, madmom processors, basic-pitch inference)
or with an independent reference (librosa chroma, the known pitch of a synthetic tone)."""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
import torch

from musicrep import models
from musicrep.models.packaged import wheel
from musicrep.models.packaged.basic_pitch import basic_pitch_available
from musicrep.models.packaged.crepe import Crepe, crepe_available
from musicrep.models.packaged.madmom import MadmomKey, import_madmom, madmom_available
from musicrep.models.packaged.musicnn_tf import MusicnnTF, musicnn_available
from musicrep.models.packaged.wheel import resample

SR = 16_000


def _tone(freqs: list[float], seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.5**k * np.sin(2 * np.pi * f * (k + 1) * t) for f in freqs for k in range(4))
    return (0.2 * x / len(freqs)).astype(np.float32)


A_MAJOR = [220.0, 277.18, 329.63]


def _major_scale(tonic_hz: float, note_seconds: float = 0.4) -> np.ndarray:
    """An ascending major scale over a sustained bass tonic: unambiguous for a key estimator."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    return np.concatenate([_tone([tonic_hz * 2 ** (k / 12), tonic_hz / 2], note_seconds) for k in steps])


def _need(name: str) -> None:
    ok, why = models.entry(name).available() if name in models.names() else (False, "not registered")
    if not ok:
        pytest.skip(why)


def _check_contract(rep: models.Representation, clip: np.ndarray, batch: int = 2) -> torch.Tensor:
    x = np.stack([clip * (1 + 0.5 * i) for i in range(batch)])
    e = rep(x)
    assert e.dtype == torch.float32
    assert e.shape[:2] == (batch, len(rep.layer_names))
    assert e.shape[2] == rep.n_frames(clip.shape[0])
    assert e.shape[3] == max(rep.layer_dims)
    assert torch.isfinite(e).all()
    # declared frame rate: frames ≈ duration × rate (centred framing adds one)
    assert abs(e.shape[2] - clip.shape[0] / rep.sample_rate * rep.frame_rate) <= 1.5
    # padding beyond a layer's true width stays zero
    for i, d in enumerate(rep.layer_dims):
        assert e[:, i, :, d:].abs().max() == 0 if d < e.shape[3] else True
    # batch independence: item 0 alone equals item 0 in the batch
    torch.testing.assert_close(rep(x[:1])[0], e[0], atol=1e-5, rtol=1e-4)
    return e


def test_registered_with_availability() -> None:
    models.names()  # the registry loads every family lazily; this test reads it directly
    for name in ["crepe", "madmom-key", "madmom-chroma", "basic-pitch", "essentia-hpcp", "musicnn-tf"]:
        ok, why = models.entry(name).available()
        assert isinstance(ok, bool) and (ok or why)


def test_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheel, "package_file", lambda *a: None)
    for fn in (crepe_available, madmom_available, basic_pitch_available):
        ok, why = fn()
        assert not ok and "pip install" in why
    monkeypatch.setenv("MUSICREP_MUSICNN_PYTHON", "/nonexistent/bin/python")
    ok, why = musicnn_available()
    assert not ok and "/nonexistent/bin/python" in why and "make musicnn-venv" in why
    with pytest.raises(RuntimeError, match="not available here.*make musicnn-venv"):
        models.get("musicnn-tf")


def test_crepe_tiny_contract_and_pitch() -> None:
    _need("crepe")
    rep = models.get("crepe", capacity="tiny")
    assert rep.frame_rate == 100.0 and rep.layer_dims == [128, 16, 16, 16, 32, 64, 360]
    _check_contract(rep, _tone([440.0], 1.0))
    for f in (220.0, 440.0, 659.26):
        f0, conf = rep.pitch(_tone([f], 0.5))
        cents = 1200 * np.log2(np.median(f0[conf > 0.5]) / f)
        assert abs(cents) < 25, (f, cents)
    with pytest.raises(ValueError, match="fmin"):
        rep.pitch(_tone([440.0], 0.1), fmin=20.0)  # below CREPE's lowest bin (DESIGN.md pitfall)
    f0, _ = rep.pitch(_tone([440.0], 0.5), fmin=500.0)  # the true pitch is outside the search range
    assert np.median(f0) >= 490.0


def test_crepe_matches_torchcrepe(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchcrepe imports torchaudio only to read files; a stub module lets us use it as the reference."""
    _need("crepe")
    pytest.importorskip("resampy")
    monkeypatch.setitem(sys.modules, "torchaudio", types.ModuleType("torchaudio"))
    for k in [k for k in sys.modules if k.startswith("torchcrepe")]:
        monkeypatch.delitem(sys.modules, k)
    torchcrepe = pytest.importorskip("torchcrepe")
    x = _tone([330.0], 0.5)
    rep = Crepe(capacity="tiny")
    frames = next(torchcrepe.preprocess(torch.tensor(x)[None], SR, 160))
    with torch.no_grad():
        ref_sal = torchcrepe.infer(frames, "tiny").numpy()
    np.testing.assert_allclose(rep.layers_one(x)[-1], ref_sal, atol=1e-4)
    # torchcrepe's decoder applies a second sigmoid and dithers, so pitch agrees only to ~±20 cents
    ref_f0 = torchcrepe.predict(torch.tensor(x)[None], SR, 160, model="tiny",
                                decoder=torchcrepe.decode.weighted_argmax).numpy()[0]
    f0, _ = rep.pitch(x)
    assert abs(1200 * np.log2(np.median(f0) / np.median(ref_f0))) < 20
    ref_emb = torchcrepe.embed(torch.tensor(x)[None], SR, 160, model="tiny").detach()[0]  # [T, C, positions]
    np.testing.assert_allclose(rep.layers_one(x)[4], ref_emb.mean(2).numpy(), atol=1e-4)


def test_crepe_full_finite() -> None:
    _need("crepe")
    rep = models.get("crepe", capacity="full", hop=800)
    assert rep.frame_rate == 20.0 and rep.n_params > 20_000_000
    e = rep(_tone([440.0], 0.5))
    assert e.shape == (1, 7, 11, 1024) and torch.isfinite(e).all()


def test_madmom_key_matches_madmom_and_finds_a_major() -> None:
    _need("madmom-key")
    rep = models.get("madmom-key")
    clip = _major_scale(220.0)
    e = _check_contract(rep, clip, batch=2)  # clips are batched through the torch CNN: must stay independent
    assert rep.frame_rate == 5.0 and rep.layer_names[-1] == "key_probs"
    probs = e[0, -1, 0, :24].numpy()
    import_madmom()
    from madmom.audio.signal import Signal
    from madmom.features.key import CNNKeyRecognitionProcessor, key_prediction_to_label

    ref = CNNKeyRecognitionProcessor()(Signal(resample(clip, SR, 44_100), sample_rate=44_100))
    np.testing.assert_allclose(probs, ref[0], atol=1e-5)
    assert key_prediction_to_label(probs[None]) == "A major"
    c_major = rep(_major_scale(261.63))[0, -1, 0, :24].numpy()
    assert key_prediction_to_label(c_major[None]) == "C major"
    short = rep(_tone(A_MAJOR, 1.0))  # shorter than the CNN's three 2x pools: padded, not a crash
    assert short.shape == (1, 10, 5, 192) and torch.isfinite(short).all()


def test_madmom_key_torch_blocks_match_madmom_layers() -> None:
    """The key CNN runs in torch; every block (not only the softmax) must equal madmom's numpy layers."""
    _need("madmom-key")
    rep = MadmomKey()
    clip = _major_scale(196.0, 0.3)[: int(2.3 * SR)]
    data = rep._features(clip)
    ref = []
    for layer in rep._net.layers:  # madmom's own numpy forward pass, layer by layer
        if type(layer).__name__ == "AverageLayer":
            break
        data = layer(data)
        if type(layer).__name__ == "BatchNormLayer":
            ref.append(np.asarray(data, dtype=np.float32).mean(axis=1))
    ours = rep.layers_one(clip)
    assert len(ours) == len(ref) + 1
    for r, o in zip(ref, ours):
        assert r.shape == o.shape
        np.testing.assert_allclose(o, r, atol=1e-5, rtol=1e-4)


def test_madmom_chroma_matches_madmom_and_librosa() -> None:
    _need("madmom-chroma")
    rep = models.get("madmom-chroma")
    clip = _tone(A_MAJOR)
    e = _check_contract(rep, clip, batch=1)
    assert rep.frame_rate == 10.0 and rep.layer_dims == [256, 256, 256, 12]
    import_madmom()
    from madmom.audio.chroma import DeepChromaProcessor
    from madmom.audio.signal import Signal

    ref = DeepChromaProcessor()(Signal(resample(clip, SR, 44_100), sample_rate=44_100))
    np.testing.assert_allclose(e[0, -1, :, :12].numpy(), ref, atol=1e-5)
    librosa = pytest.importorskip("librosa")
    lib = librosa.feature.chroma_stft(y=clip, sr=SR).mean(1)
    assert set(np.argsort(ref.mean(0))[-3:]) == set(np.argsort(lib)[-3:]) == {1, 4, 9}  # C#, E, A


def test_basic_pitch_matches_package_inference(tmp_path) -> None:
    _need("basic-pitch")
    rep = models.get("basic-pitch")
    assert rep.sample_rate == 22_050 and abs(rep.frame_rate - 86.1328125) < 1e-9
    clip = resample(_tone([440.0]), SR, 22_050)
    e = _check_contract(rep, clip, batch=2)  # windows of all clips share one onnxruntime call
    note = e[0, rep.layer_names.index("note"), :, :88].numpy()
    assert np.bincount(note.argmax(1)).argmax() == 69 - 21  # A4 = MIDI 69, first key MIDI 21
    inference = pytest.importorskip("basic_pitch.inference")
    import soundfile as sf

    wav = tmp_path / "a4.wav"
    sf.write(wav, clip, 22_050, subtype="FLOAT")
    ref = inference.run_inference(str(wav), str(rep.weights_path))
    for key in ("note", "onset", "contour"):
        r = ref[key]
        m = e[0, rep.layer_names.index(key), : len(r), : r.shape[1]].numpy()
        np.testing.assert_allclose(m, r[: m.shape[0]], atol=2e-3)


def test_essentia_hpcp_peaks_on_chord_tones() -> None:
    _need("essentia-hpcp")
    rep = models.get("essentia-hpcp")
    e = _check_contract(rep, _tone(A_MAJOR))
    assert rep.frame_rate == 31.25 and rep.layer_dims == [12, 36]
    h = e[0, 0, :, :12].mean(0).numpy()
    assert set(np.argsort(h)[-3:]) == {0, 4, 7}  # A-based bins: A, C#, E
    assert h.max() <= 1.0 + 1e-6


@pytest.mark.slow
def test_musicnn_tf_subprocess() -> None:
    _need("musicnn-tf")
    rep = models.get("musicnn-tf")
    e = rep(_tone(A_MAJOR, 6.0))
    assert e.shape == (1, 9, 2, 753) and torch.isfinite(e).all()
    taggram = e[0, -1, :, :50]
    assert ((taggram >= 0) & (taggram <= 1)).all() and taggram.sum() > 0
    assert e[0, 0, :, 408:].abs().max() == 0  # timbral layer is 408 wide
    for i, d in enumerate(rep.layer_dims):  # declared widths are the true widths: nonzero up to d, zero after
        assert e[0, i, :, d:].abs().sum() == 0 and e[0, i, :, d // 2 : d].abs().max() > 0, rep.layer_names[i]


@pytest.mark.slow
def test_musicnn_tf_one_persistent_worker() -> None:
    """TensorFlow starts once per instance: consecutive embeds reuse one worker process and give what a
    fresh instance gives; items stay independent; close() and garbage collection end the worker."""
    _need("musicnn-tf")
    rep = MusicnnTF()
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((3, 3 * SR)) * 0.1, dtype=torch.float32)
    first = rep(x)
    proc = rep._worker.proc
    second = rep(x[:1])
    assert rep._worker.proc is proc and proc.poll() is None  # same process, still running
    torch.testing.assert_close(second[0], first[0], atol=1e-5, rtol=1e-4)  # batch independence
    fresh = MusicnnTF()
    torch.testing.assert_close(fresh(x), first, atol=1e-5, rtol=1e-4)
    fresh_proc = fresh._worker.proc
    assert fresh_proc.pid != proc.pid
    rep.close()
    assert proc.wait(timeout=30) is not None and rep._worker is None
    del fresh
    import gc

    gc.collect()
    assert fresh_proc.wait(timeout=30) is not None


def test_basic_pitch_silence_is_finite() -> None:
    pytest.importorskip("onnxruntime")
    rep = models.get("basic-pitch")
    out = rep.embed(torch.zeros(2, 3 * rep.sample_rate))
    assert torch.isfinite(out).all()


def test_musicnn_worker_is_a_standalone_script() -> None:
    """The worker runs in the TensorFlow venv: it may import only the standard library and that venv's packages."""
    import ast

    from musicrep.models.packaged.musicnn_tf import WORKER_SCRIPT

    tree = ast.parse(WORKER_SCRIPT.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"json", "os", "sys", "traceback", "numpy", "librosa", "tensorflow", "musicnn"}, imported


def test_musicnn_worker_protocol_with_stub_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker script, started by file path, answers JSON lines end to end (stand-ins for TensorFlow and
    musicnn in tests/fake_musicnn_venv give known outputs): one persistent process, every patch of every clip,
    layers stacked at the adapter's frame rate, the process ended by close()."""
    pytest.importorskip("librosa")
    from pathlib import Path

    stubs = Path(__file__).with_name("fake_musicnn_venv")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")]))
    rep = MusicnnTF(python=sys.executable)
    x = np.stack([_tone([220.0], 6.0), 0.5 * _tone([330.0], 6.0)])
    e = rep(x)
    assert e.shape == (2, 9, 2, 753)  # 6 s = two 3 s patches
    widths = [408, 153, 64, 64, 64, 753, 753, 200, 50]
    for i in range(2):
        rms = float(np.sqrt(np.mean(x[i].astype(np.float64) ** 2)))
        for layer, w in enumerate(widths):
            for k in range(2):  # patch k of clip i is (k + 1) * rms; layer l scales it by l + 1; taggram = sigmoid
                v = (k + 1) * rms
                want = 1 / (1 + np.exp(-v)) if layer == 8 else v * (layer + 1)
                np.testing.assert_allclose(e[i, layer, k, :w].numpy(), want, rtol=1e-5)
                assert e[i, layer, k, w:].abs().max() == 0 if w < 753 else True
    proc = rep._worker.proc
    torch.testing.assert_close(rep(x[1:])[0], e[1])  # same worker, items independent
    assert rep._worker.proc is proc and proc.poll() is None
    rep.close()
    assert proc.wait(timeout=30) is not None and rep._worker is None
