"""Extraction + store: windows, timeline means, atomic shards, resume, bad files, executors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from musicrep import embed as embed_mod
from musicrep.audio import load
from musicrep.embed import RepSpec, WindowConfig, cut_windows, extract, iter_windows
from musicrep.models.base import Representation
from musicrep.store import EmbeddingStore, content_hash

SR = 16_000


class Stats(Representation):
    """A transparent test representation: layer 0 = per-frame [mean, rms], layer 1 = [max, min, abs-mean]."""

    name = "test-stats"
    sample_rate = SR
    frame_rate = 10.0
    layer_names = ["moments", "extremes"]
    layer_dims = [2, 3]
    window_seconds = 1.0

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        fr = audio.unfold(-1, SR // 10, SR // 10)  # [B, T, 1600]
        a = torch.stack([fr.mean(-1), fr.square().mean(-1).sqrt(), torch.zeros_like(fr[..., 0])], -1)
        b = torch.stack([fr.amax(-1), fr.amin(-1), fr.abs().mean(-1)], -1)
        return torch.stack([a, b], 1)  # [B, 2, T, 3]


def write_clips(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        seconds = rng.uniform(0.4, 4.5)
        y = (rng.uniform(-0.5, 0.5) + 0.3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
        p = folder / f"clip{i:02d}.wav"
        sf.write(p, np.clip(y, -1, 1), SR, subtype="FLOAT")
        paths.append(p)
    return paths


def manual_mean(rep: Representation, path: Path, window: float, hop: float, pad: bool = True) -> np.ndarray:
    sr = rep.sample_rate
    w = expected_windows(load(path, sr), int(window * sr), int(hop * sr), pad)
    out = rep.embed(torch.from_numpy(np.stack(w))).mean(dim=2)  # [n, L, H]
    return out.double().mean(0).float().numpy()


def expected_windows(y: np.ndarray, window: int, hop: int, pad: bool) -> list[np.ndarray]:
    """Regular full windows; with pad, a short clip zero-padded or an uncovered tail end-aligned."""
    out = [y[s : s + window] for s in range(0, len(y) - window + 1, hop)]
    if pad and not out:
        out = [np.pad(y, (0, window - len(y)))]
    elif pad and (len(out) - 1) * hop + window < len(y):
        out.append(y[-window:])
    return out


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.49, 2.5, 7.77])
@pytest.mark.parametrize("pad", [True, False])
def test_iter_windows_cover_the_clip_across_block_boundaries(tmp_path: Path, seconds: float, pad: bool) -> None:
    p = tmp_path / "x.wav"
    y = np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * SR)).astype(np.float32)
    sf.write(p, y, SR, subtype="FLOAT")
    want = expected_windows(y, SR, SR // 2, pad)
    got = list(iter_windows(p, SR, SR, SR // 2, pad=pad, block_seconds=0.7))  # blocks smaller than a window
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    if pad and seconds >= 1.0:  # no window holds invented silence
        assert all(np.count_nonzero(g) == len(g) for g in got)


@pytest.mark.parametrize("samples", [4_800, 16_000, 39_840, 40_000, 124_320])
def test_cut_windows_cuts_a_batch_in_memory_like_a_stream(samples: int) -> None:
    """A ``[n, samples]`` batch given as one block is cut row by row as the streamed file is; starts say where."""
    y = np.random.default_rng(1).uniform(-0.5, 0.5, (2, samples)).astype(np.float32)
    got = list(cut_windows([y], SR, SR // 2, pad=True))
    want = [expected_windows(row, SR, SR // 2, pad=True) for row in y]
    assert len(got) == len(want[0])
    for i, (start, w) in enumerate(got):
        assert w.shape == (2, SR)
        for row, rows_want in zip(w, want):
            np.testing.assert_array_equal(row, rows_want[i])
        if samples >= SR:  # a window's samples are the clip's from its start
            np.testing.assert_array_equal(w, y[:, start : start + SR])


def test_cut_windows_grid_moves_the_tail_window_back_onto_the_grid() -> None:
    """2.3 s, 1 s windows every 1 s, grid 0.25 s: the tail starts at 1.25 s (not 1.3 s); 2.2 s: the grid
    tail would be the 1 s window again, so none is given."""
    y = np.arange(36_800, dtype=np.float32)
    assert [s for s, _ in cut_windows([y], SR, SR, grid=4_000)] == [0, 16_000, 20_000]
    assert [s for s, _ in cut_windows([y], SR, SR)] == [0, 16_000, 20_800]
    assert [s for s, _ in cut_windows([y[:35_200]], SR, SR, grid=4_000)] == [0, 16_000]
    blocks = np.array_split(y, 9)  # streamed in blocks shorter than a window: same starts and samples
    streamed = [(s, w.copy()) for s, w in cut_windows(blocks, SR, SR, grid=4_000)]
    assert [s for s, _ in streamed] == [0, 16_000, 20_000]
    for s, w in streamed:
        np.testing.assert_array_equal(w, y[s : s + SR])


def test_extract_timeline_means_match_manual_computation(tmp_path: Path) -> None:
    paths = write_clips(tmp_path / "audio", 7)
    rep = Stats()
    res = extract(rep, paths, tmp_path / "store", WindowConfig(hop_seconds=0.5), batch_size=5, shard_size=3,
                  progress=False)
    assert res.errors == [] and res.computed_shards == 3
    x, _ = res.store.get([k for k in res.keys if k])
    assert x.shape == (7, 2, 3)
    for i, p in enumerate(paths):
        np.testing.assert_allclose(x[i], manual_mean(rep, p, 1.0, 0.5), rtol=1e-5, atol=1e-6)
    assert res.store.meta["layer_dims"] == [2, 3]


def test_frame_level_embeddings_kept_on_request(tmp_path: Path) -> None:
    paths = write_clips(tmp_path / "audio", 3)
    res = extract(Stats(), paths, tmp_path / "store", WindowConfig(hop_seconds=0.5, frames=True), progress=False)
    means, frames = res.store.get(res.keys, frames=True)  # type: ignore[arg-type]
    assert frames is not None
    for m, f, p in zip(means, frames, paths):
        n = len(expected_windows(load(p), SR, SR // 2, pad=True))
        assert f.shape == (n, 2, 3)
        np.testing.assert_allclose(f.mean(0), m, rtol=1e-5, atol=1e-6)


def test_rerun_skips_finished_work(tmp_path: Path) -> None:
    paths = write_clips(tmp_path / "audio", 4)
    first = extract(Stats(), paths, tmp_path / "store", shard_size=2, progress=False)
    again = extract(Stats(), paths, tmp_path / "store", shard_size=2, progress=False)
    assert first.computed_shards == 2 and again.computed_shards == 0 and again.skipped_shards == 2
    assert again.keys == first.keys


def _store_bytes(store: EmbeddingStore) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in store.shard_files()}


def test_resume_after_kill_gives_identical_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_clips(tmp_path / "audio", 9)
    whole = extract(Stats(), paths, tmp_path / "a", shard_size=2, batch_size=3, progress=False)

    real = embed_mod.compute_shard
    calls = {"n": 0}

    def dying(*args, **kwargs):  # the third shard is "killed" mid-way
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(embed_mod, "compute_shard", dying)
    with pytest.raises(KeyboardInterrupt):
        extract(Stats(), paths, tmp_path / "b", shard_size=2, batch_size=3, progress=False)
    partial = EmbeddingStore(tmp_path / "b", whole.store.dir.parent.name, whole.store.dir.name)
    assert len(partial.shard_files()) == 2
    assert not list(partial.dir.glob(".tmp-*"))  # nothing half-written
    monkeypatch.setattr(embed_mod, "compute_shard", real)
    resumed = extract(Stats(), paths, tmp_path / "b", shard_size=2, batch_size=3, progress=False)
    assert resumed.skipped_shards == 2 and resumed.computed_shards == 3
    assert _store_bytes(resumed.store) == _store_bytes(whole.store)


def test_corrupt_and_missing_files_are_reported_and_skipped(tmp_path: Path) -> None:
    paths = write_clips(tmp_path / "audio", 4)
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(b"RIFF....garbage")
    missing = tmp_path / "audio" / "gone.wav"
    res = extract(Stats(), [paths[0], bad, paths[1], missing, paths[2], paths[3]], tmp_path / "store",
                  shard_size=2, progress=False)
    assert [k is None for k in res.keys] == [False, True, False, True, False, False]
    msgs = " ".join(e["error"] for e in res.errors)
    assert "broken.wav" in msgs and "gone.wav" in msgs
    assert any("broken.wav" in e["path"] for e in res.store.errors())
    x, _ = res.store.get([k for k in res.keys if k])
    assert x.shape == (4, 2, 3) and np.isfinite(x).all()
    # a re-run retries the bad file, reports it again, and recomputes nothing else
    again = extract(Stats(), [paths[0], bad, paths[1]], tmp_path / "store", shard_size=2, progress=False)
    assert again.keys[1] is None and any("broken.wav" in e["error"] for e in again.errors)


def test_same_audio_twice_is_embedded_once(tmp_path: Path) -> None:
    paths = write_clips(tmp_path / "audio", 2)
    copy = tmp_path / "audio" / "copy.wav"
    copy.write_bytes(paths[0].read_bytes())
    res = extract(Stats(), [paths[0], paths[1], copy], tmp_path / "store", progress=False)
    assert res.keys[0] == res.keys[2] == content_hash(copy)
    assert len(res.store.keys()) == 2


def test_window_key_separates_configs(tmp_path: Path) -> None:
    paths = write_clips(tmp_path / "audio", 2)
    a = extract(Stats(), paths, tmp_path / "store", WindowConfig(hop_seconds=0.5), progress=False)
    b = extract(Stats(), paths, tmp_path / "store", WindowConfig(hop_seconds=1.0), progress=False)
    assert a.store.dir != b.store.dir and b.computed_shards == 1


def test_unknown_window_key_is_named() -> None:
    with pytest.raises(Exception, match="hop"):
        WindowConfig.model_validate({"hopseconds": 1.0, "hop_seconds": -1})
    with pytest.raises(Exception, match="hopseconds"):
        WindowConfig.model_validate({"hopseconds": 1.0})


def test_ray_executor_gives_the_same_store_as_local(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from musicrep import models

    if "mfcc" not in models.names():
        pytest.skip("handcrafted mfcc representation not registered")
    paths = write_clips(tmp_path / "audio", 5)
    spec = RepSpec(name="mfcc")
    local = extract(spec, paths, tmp_path / "local", shard_size=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = extract(spec, paths, tmp_path / "ray", shard_size=2, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert sorted(f.name for f in remote.store.shard_files()) == sorted(f.name for f in local.store.shard_files())
    keys = [k for k in local.keys if k]
    np.testing.assert_allclose(remote.store.get(keys)[0], local.store.get(keys)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["vgg", "nfnet", "musicnn", "samplecnn"])
def test_inference_copy_keeps_numbers_and_leaves_the_model_alone(name: str) -> None:
    """The module extraction runs (folded batch norms, channels-last) gives the eval-mode model's numbers,
    and the model handed in keeps its weights and id (the store key)."""
    from musicrep.models import get
    from musicrep.models.base import for_inference

    x = torch.randn(2, 3 * SR) * 0.1
    plain = get(name, size="small", seed=0).eval()
    model = get(name, size="small", seed=0)
    # give batch norms non-trivial running statistics, as a trained checkpoint would have
    g = torch.Generator().manual_seed(1)
    for m in [*plain.modules()]:
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
    model.load_state_dict(plain.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner = for_inference(model)
    assert model.id == plain.id
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    if plain.prefers_channels_last:  # the 2-D conv weights the runner uses are laid out NHWC
        convs = [p for p in runner.parameters() if p.dim() == 4 and p.shape[1] > 1]
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
        assert any(not p.is_contiguous() for p in convs)  # (1×1 kernels are both layouts at once)
    with torch.inference_mode():
        torch.testing.assert_close(runner.embed(x), plain.embed(x), rtol=1e-4, atol=1e-5)


def test_fold_batchnorm_removes_every_conv_bn_pair_of_the_vgg() -> None:
    from musicrep.models import get
    from musicrep.models.base import fold_batchnorm

    vgg = get("vgg", size="small", seed=0).eval()
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in vgg.modules())
    assert n_bn == 5 and fold_batchnorm(vgg) == n_bn
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in vgg.modules())
    # a training-mode batch norm normalises by batch statistics, so it is left alone
    train = get("vgg", size="small", seed=0).train()
    assert fold_batchnorm(train) == 0


def test_deformed_audio_is_cached_in_its_own_store_and_equals_deforming_by_hand(tmp_path: Path) -> None:
    from musicrep import augment
    from musicrep.audio import load
    from musicrep.embed import extract
    from musicrep.models import get
    from musicrep.store import content_hash

    sr = 16_000
    t = np.arange(int(4.5 * sr)) / sr
    clean = tmp_path / "clip.wav"
    sf.write(clean, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr, subtype="FLOAT")
    rep = get("mfcc")
    spec = "noise:pink@snr=5"
    a = extract(rep, [clean], tmp_path / "store", deformation=spec, progress=False)
    c = extract(rep, [clean], tmp_path / "store", progress=False)
    assert a.store.dir != c.store.dir and a.store.meta["deformation"] == spec
    again = extract(rep, [clean], tmp_path / "store", deformation=spec, progress=False)
    assert again.computed_shards == 0  # cached like any embedding
    # the same numbers as deforming the file by hand (seeded by the file's content hash) and embedding that
    by_hand = tmp_path / "by_hand.wav"
    y = augment.apply(spec, load(clean, sr=sr), sr, item_id=content_hash(clean))
    sf.write(by_hand, y, sr, subtype="FLOAT")
    ref = extract(rep, [by_hand], tmp_path / "store2", progress=False)
    xa, _ = a.store.get([a.keys[0]])
    xr, _ = ref.store.get([ref.keys[0]])
    np.testing.assert_allclose(xa, xr, rtol=1e-5, atol=1e-5)
    xc, _ = c.store.get([c.keys[0]])
    assert not np.allclose(xa, xc)
