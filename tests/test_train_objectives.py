"""Training objectives (train/objectives/) and mixup (train/mixup.py): losses that learn, hand-checked
NT-Xent, Beta(5, 2) mixup gains, frozen BEST-RQ targets, masked-only reconstruction loss."""

from __future__ import annotations

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from scipy import stats

from musicrep import models
from musicrep.train.batch import Batch
from musicrep.train.mixup import mix, mixup, mixup_draw
from musicrep.train.objectives import OBJECTIVES, get_objective
from musicrep.train.objectives.masked import masked_mse
from musicrep.train.objectives.masking import (
    SpanMasker,
    frame_groups,
    frame_owner,
    span_mask,
)
from musicrep.train.objectives.simclr import nt_xent

SR = 16_000
ENCODERS = ["vgg", "musicnn", "ast", "tmae", "nfnet", "conformer", "samplecnn"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny models on a shared 2-core machine: one intra-op thread is many times faster than two that spin
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tones(freqs: list[float], seconds: float = 1.0, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    """``[len(freqs), samples]`` harmonic tones (3 partials) plus a little noise, 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    out = []
    for f in freqs:
        phase = rng.uniform(0, 2 * np.pi)
        s = sum(np.sin(2 * np.pi * f * k * t + phase) / k for k in (1, 2, 3))
        out.append(s + noise * rng.standard_normal(t.shape))
    return torch.tensor(np.array(out), dtype=torch.float32)


def encoder(name: str, seed: int = 0) -> models.TorchEncoder:
    torch.manual_seed(seed)
    return models.get(name, size="small", seed=seed)


def fit(obj: torch.nn.Module, batch: Batch, steps: int, lr: float = 1e-3) -> list[float]:
    """Adam steps on one fixed batch; the loss of each step."""
    torch.manual_seed(0)
    obj.train()
    opt = torch.optim.Adam([p for p in obj.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, logs = obj(batch)
        loss.backward()
        opt.step()
        assert math.isfinite(logs["loss"])
        losses.append(float(loss.detach()))
    return losses


def falls(losses: list[float], factor: float) -> bool:
    return float(np.mean(losses[-5:])) < factor * float(np.mean(losses[:5]))


# --- each objective learns on a tiny fixed batch --------------------------------------------------


def test_supervised_loss_falls() -> None:
    enc = encoder("vgg")
    audio = tones([110, 220, 440, 880, 140, 280], seed=1, seconds=0.5)
    y = torch.eye(4)[[0, 1, 2, 3, 0, 1]]
    obj = get_objective("supervised", enc, n_classes=4, kind="multiclass")
    losses = fit(obj, Batch(x=enc.prepare(audio), y=y), 20)
    assert losses[0] > 1.0  # ≈ ln 4 at the start
    assert falls(losses, 0.5), losses


def test_supervised_multilabel_uses_bce() -> None:
    enc = encoder("vgg")
    obj = get_objective("supervised", enc, n_classes=3)
    x = enc.prepare(tones([200, 300], seed=2))
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss = obj(Batch(x=x, y=y))[0].detach()
    logits = obj.head(enc.forward_input(x)[-1].mean(dim=1)).detach().numpy().astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    bce = -np.mean(y.numpy() * np.log(p) + (1 - y.numpy()) * np.log(1 - p))
    assert float(loss) == pytest.approx(bce, rel=1e-4)


@pytest.mark.parametrize("name", ["vgg", "samplecnn"])
def test_simclr_loss_falls(name: str) -> None:
    enc = encoder(name)
    freqs = [110, 220, 440, 880, 1760, 3520]
    a, b = tones(freqs, seed=3, noise=0.2, seconds=0.5), tones(freqs, seed=4, noise=0.2, seconds=0.5)  # two "crops" of each track
    obj = get_objective("simclr", enc)
    losses = fit(obj, Batch(x=enc.prepare(a), x2=enc.prepare(b)), 20)
    assert falls(losses, 0.5), losses


@pytest.mark.parametrize("name", ["tmae", "vgg"])  # the MAE patch path and the time-span path
def test_masked_loss_falls(name: str) -> None:
    enc = encoder(name)
    audio = tones([110, 220, 440, 880], seed=5)
    obj = get_objective("masked", enc)
    losses = fit(obj, Batch(x=enc.prepare(audio)), 40, lr=5e-3 if name == "tmae" else 2e-3)
    assert falls(losses, 0.8), losses


def test_bestrq_loss_falls() -> None:
    enc = encoder("conformer")
    audio = tones([110, 220, 440, 880], seed=6)
    obj = get_objective("bestrq", enc, codebook_size=64)
    losses = fit(obj, Batch(x=enc.prepare(audio)), 30, lr=2e-3)
    assert losses[0] > 3.0  # ≈ ln 64 with an untrained head
    assert falls(losses, 0.6), losses


# --- every encoder family with every objective: one finite step, every encoder parameter learns ----


@pytest.mark.parametrize("objective", ["supervised", "simclr", "masked", "bestrq"])
@pytest.mark.parametrize("name", ENCODERS)
def test_one_step_every_encoder(name: str, objective: str) -> None:
    enc = encoder(name)
    x = enc.prepare(tones([150, 300, 600], seed=7))
    x2 = enc.prepare(tones([150, 300, 600], seed=8))
    y = torch.eye(3)
    obj = get_objective(objective, enc, n_classes=3)
    obj.train()
    loss, logs = obj(Batch(x=x, x2=x2, y=y))
    assert loss.dim() == 0 and math.isfinite(float(loss.detach())) and set(logs) >= {"loss"}
    loss.backward()
    missing = [k for k, p in obj.encoder.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert any(float(p.grad.abs().sum()) > 0 for p in obj.encoder.parameters())  # type: ignore[union-attr]


# --- NT-Xent ---------------------------------------------------------------------------------------


def test_nt_xent_matches_hand_computation() -> None:
    v1 = np.array([[1.0, 0.0, 0.5], [0.2, 1.0, -0.3]])
    v2 = np.array([[0.3, 0.4, 0.4], [0.6, 0.8, 0.5]])  # positives only loosely aligned: loss of order 1
    tau = 0.1
    # Chen et al. 2020 eq. 1 by hand: views 0,1 = pair 0's; 2,3 = pair 1's; mean of l(i, j) over all 4 anchors
    views = [v1[0], v2[0], v1[1], v2[1]]
    partner = {0: 1, 1: 0, 2: 3, 3: 2}

    def sim(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    total, hits = 0.0, 0
    for i in range(4):
        denom = sum(math.exp(sim(views[i], views[k]) / tau) for k in range(4) if k != i)
        total += -math.log(math.exp(sim(views[i], views[partner[i]]) / tau) / denom)
        hits += max((k for k in range(4) if k != i), key=lambda k: sim(views[i], views[k])) == partner[i]
    expected = total / 4
    loss, acc = nt_xent(torch.tensor(v1, dtype=torch.float32), torch.tensor(v2, dtype=torch.float32), tau)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(acc) == hits / 4


def test_simclr_single_process_never_calls_torch_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist
    import torch.distributed.nn.functional as dfn

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("torch.distributed used in a single-process run")

    for mod, fn in [(dfn, "all_gather"), (dist, "all_gather"), (dist, "all_reduce"), (dist, "get_world_size"),
                    (dist, "get_rank")]:
        monkeypatch.setattr(mod, fn, boom)
    enc = encoder("vgg")
    x = enc.prepare(tones([200, 400], seed=9))
    loss, _ = get_objective("simclr", enc)(Batch(x=x, x2=x))
    loss.backward()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ddp_worker(rank: int, world: int, port: int, v1: torch.Tensor, v2: torch.Tensor, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    b = v1.shape[0] // world
    a1 = v1[rank * b:(rank + 1) * b].clone().requires_grad_(True)
    a2 = v2[rank * b:(rank + 1) * b].clone().requires_grad_(True)
    loss, _ = nt_xent(a1, a2, 0.1)
    loss.backward()
    torch.save({"loss": loss.detach(), "g1": a1.grad, "g2": a2.grad}, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def test_nt_xent_gathers_the_global_batch_across_ranks(tmp_path: object) -> None:
    # 2 gloo processes each holding half of the pairs: the mean of their losses is the single-process
    # loss of the whole batch, and (gradient summed through the gather, then averaged as DDP does) each
    # rank's gradient is the whole-batch gradient of its rows — i.e. negatives are the global batch.
    g = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    # fork: the children need nothing re-imported, which keeps the test to a few seconds
    mp.start_processes(ddp_worker, args=(2, free_port(), v1, v2, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    r = [torch.load(f"{tmp_path}/{i}.pt", weights_only=True) for i in range(2)]
    f1, f2 = v1.clone().requires_grad_(True), v2.clone().requires_grad_(True)
    full, _ = nt_xent(f1, f2, 0.1)
    full.backward()
    assert float((r[0]["loss"] + r[1]["loss"]) / 2) == pytest.approx(float(full.detach()), rel=1e-5)
    g1 = torch.cat([r[0]["g1"], r[1]["g1"]]) / 2
    g2 = torch.cat([r[0]["g2"], r[1]["g2"]]) / 2
    torch.testing.assert_close(g1, f1.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(g2, f2.grad, rtol=1e-4, atol=1e-6)


# --- mixup -----------------------------------------------------------------------------------------


def test_mixup_gains_follow_beta_5_2() -> None:
    rng = np.random.default_rng(1234)
    lam = np.concatenate([mixup_draw(64, rng)[0].numpy() for _ in range(40)])
    assert stats.kstest(lam, stats.beta(5, 2).cdf).pvalue > 0.01
    assert stats.kstest(lam, stats.beta(2, 5).cdf).pvalue < 1e-6  # the test can tell the difference


def test_mixup_keeps_lambda_one_items_and_mixes_x_x2_y_alike() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 8, 5, generator=g)
    x2 = torch.randn(4, 1, 8, 5, generator=g)
    y = torch.eye(4)
    lam = torch.tensor([1.0, 0.6, 1.0, 0.8])
    perm = torch.tensor([1, 2, 3, 0])
    out = mix(Batch(x=x, x2=x2, y=y, track=torch.arange(4)), lam, perm)
    assert torch.equal(out.x[0], x[0]) and torch.equal(out.x[2], x[2]) and torch.equal(out.y[0], y[0])
    for i in (1, 3):
        lm, j = float(lam[i]), int(perm[i])
        np.testing.assert_allclose(out.x[i].numpy(), lm * x[i].numpy() + (1 - lm) * x[j].numpy(), rtol=1e-6)
        np.testing.assert_allclose(out.x2[i].numpy(), lm * x2[i].numpy() + (1 - lm) * x2[j].numpy(), rtol=1e-6)
    # one-hot targets: row i holds λ at its own class and 1 − λ at its partner's
    np.testing.assert_allclose(out.y.numpy()[[1, 3], [1, 3]], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(out.y.numpy()[[1, 3], [2, 0]], [0.4, 0.2], rtol=1e-6)
    assert torch.equal(out.track, torch.arange(4))


def test_mixup_on_waveforms_is_deterministic_and_uses_the_drawn_gains() -> None:
    wave = torch.eye(6)  # item i is a unit impulse at sample i: its mixed row reads off (λ, perm)
    y = torch.eye(6)
    a = mixup(Batch(x=wave, y=y), np.random.default_rng(7))
    b = mixup(Batch(x=wave, y=y), np.random.default_rng(7))
    assert torch.equal(a.x, b.x)
    lam, perm = mixup_draw(6, np.random.default_rng(7))
    moved = perm != torch.arange(6)
    np.testing.assert_allclose(a.x.diagonal()[moved].numpy(), lam[moved].numpy(), rtol=1e-6)
    assert torch.equal(a.x, a.y)  # x and y mixed with the same gains and partners
    c = mixup(Batch(x=wave), torch.Generator().manual_seed(3))
    d = mixup(Batch(x=wave), torch.Generator().manual_seed(3))
    assert torch.equal(c.x, d.x)


# --- BEST-RQ targets are frozen, saved and seeded --------------------------------------------------


def test_bestrq_projection_and_codebook_are_frozen_saved_and_seeded() -> None:
    enc = encoder("vgg")
    x = enc.prepare(tones([110, 440, 1760], seed=10))
    mel = x[:, 0].transpose(1, 2)
    torch.manual_seed(1)
    a = get_objective("bestrq", enc, seed=3, codebook_size=32)
    torch.manual_seed(2)  # the global RNG does not matter, only the seed
    b = get_objective("bestrq", encoder("vgg"), seed=3, codebook_size=32)
    c = get_objective("bestrq", encoder("vgg"), seed=4, codebook_size=32)
    names = {k for k, _ in a.named_parameters()}
    assert "projection" not in names and "codebook" not in names
    assert {"projection", "codebook"} <= set(a.state_dict())
    assert not a.projection.requires_grad and not a.codebook.requires_grad
    ta = a.targets(mel, 10)
    assert ta.shape == (3, 10) and ta.dtype == torch.int64
    assert torch.equal(ta, b.targets(mel, 10))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # training precision does not change the targets
        assert torch.equal(a.targets(mel, 10), ta)
    assert not torch.equal(a.projection, c.projection)
    # a resumed run loads the buffers, so its targets are the saved run's whatever its seed
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.targets(mel, 10), ta)
    # a training step leaves them untouched
    before = (a.projection.clone(), a.codebook.clone())
    fit(a, Batch(x=x), 2)
    assert torch.equal(a.projection, before[0]) and torch.equal(a.codebook, before[1])


def test_bestrq_targets_follow_the_nearest_codeword() -> None:
    enc = encoder("musicnn")  # 100 Hz output: groups of 2 frames
    obj = get_objective("bestrq", enc, codebook_size=16, codebook_dim=4)
    mel = torch.randn(2, 12, 96)
    ids = obj.targets(mel, 12).numpy()
    P, C = obj.projection.numpy().astype(np.float64), obj.codebook.numpy().astype(np.float64)
    for b in range(2):
        for j in range(12):
            stacked = np.concatenate([mel[b, min(j + i, 11)].numpy() for i in range(obj.group)])
            z = stacked @ P
            assert ids[b, j] == int(np.argmax(C @ (z / np.linalg.norm(z))))


# --- masked reconstruction: masked positions only --------------------------------------------------


def test_masked_mse_counts_masked_positions_only() -> None:
    pred = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, 3.0]]])
    target = torch.tensor([[[0.0, 0.0], [5.0, 5.0], [1.0, 2.0]]])
    mask = torch.tensor([[1, 0, 1]])
    expected = (((1 + 4) / 2) + ((4 + 1) / 2)) / 2  # positions 0 and 2 only
    assert float(masked_mse(pred, target, mask)) == pytest.approx(expected)
    other = pred.clone()
    other[0, 1] = torch.tensor([-100.0, 42.0])  # change the unmasked prediction
    assert float(masked_mse(other, target, mask)) == pytest.approx(expected)


def test_tmae_loss_ignores_unmasked_patch_predictions(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = encoder("tmae")
    obj = get_objective("masked", enc)
    x = enc.prepare(tones([220, 440], seed=11))
    seen = {}
    real = enc.forward_masked

    def spy(*a: object, **k: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = real(*a, **k)
        seen["mask"] = out[1]
        return out

    monkeypatch.setattr(enc, "forward_masked", spy)
    torch.manual_seed(5)
    base, _ = obj(Batch(x=x))
    assert 0 < float(seen["mask"].mean()) < 1
    handle = obj.decoder.register_forward_hook(lambda m, i, out: out + 1e3 * (1 - seen["mask"])[..., None])
    torch.manual_seed(5)
    moved, _ = obj(Batch(x=x))
    handle.remove()
    assert float(moved.detach()) == pytest.approx(float(base.detach()), rel=1e-6)


@pytest.mark.parametrize("name", ["vgg", "samplecnn"])
def test_span_masker_zeros_masked_frames_and_keeps_clean_targets(name: str) -> None:
    enc = encoder(name)
    audio = tones([300, 500], seed=12)
    x = enc.prepare(audio)
    torch.manual_seed(0)
    mi = SpanMasker(enc, 0.5, 0.2)(x)
    t = mi.mask.shape[1]
    assert mi.mel.shape == (2, t, 96) and abs(float(mi.mask.float().mean()) - 0.5) < 0.2
    clean = models.get("vgg").prepare(audio)[:, 0].transpose(1, 2)  # log-mel any encoder would see
    torch.testing.assert_close(mi.mel, clean)
    if name == "vgg":
        assert torch.all(mi.x[:, 0].transpose(1, 2)[mi.mask] == 0)
        assert torch.equal(mi.x[:, 0].transpose(1, 2)[~mi.mask], clean[~mi.mask])
    else:  # waveform: the samples around masked frames are silent, the others untouched
        frame_of_sample = ((torch.arange(x.shape[1]) + 80) // 160).clamp(max=t - 1)
        sample_mask = mi.mask[:, frame_of_sample]
        assert torch.all(mi.x[sample_mask] == 0) and torch.equal(mi.x[~sample_mask], x[~sample_mask])


def test_span_mask_ratio_and_spans() -> None:
    torch.manual_seed(0)
    m = span_mask(64, 300, 0.5, 40)
    assert m.shape == (64, 300)
    assert abs(float(m.float().mean()) - 0.5) < 0.1
    # spans: the number of on/off switches is at most that of 4 separate spans per item (k = round(0.5·300/40))
    switches = (m[:, 1:] != m[:, :-1]).sum(dim=1)
    assert int(switches.max()) <= 8


def test_frame_groups_and_owner_are_inverse() -> None:
    for n_in, n_out, g in [(301, 10, 31), (301, 29, 11), (301, 301, 1), (100, 7, 15), (48, 8, 6)]:  # g = ceil(n_in/n_out)
        idx = frame_groups(n_in, n_out, g)
        j, i = frame_owner(n_in, n_out, g)
        assert torch.equal(idx[j, i], torch.arange(n_in))


# --- configuration errors ----------------------------------------------------------------------------


def test_config_typo_names_the_key() -> None:
    enc = encoder("vgg")
    with pytest.raises(ValueError, match="temprature") as e:
        get_objective("simclr", enc, temprature=0.2)
    assert "temperature" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="codebook_size"):
        get_objective("bestrq", enc, codebook_size="many")
    with pytest.raises(ValueError, match="kind"):
        get_objective("supervised", enc, n_classes=3, kind="tags")


def test_unknown_objective_and_missing_inputs_are_one_line_errors() -> None:
    enc = encoder("vgg")
    assert set(OBJECTIVES) == {"supervised", "simclr", "masked", "bestrq", "finetune"}
    with pytest.raises(ValueError, match="registered: bestrq, finetune, masked, simclr, supervised"):
        get_objective("simclrr", enc)
    with pytest.raises(ValueError, match="n_classes"):
        get_objective("supervised", enc)
    x = enc.prepare(tones([200], seed=13))
    with pytest.raises(ValueError, match="pairs"):
        get_objective("simclr", enc)(Batch(x=x))
    with pytest.raises(ValueError, match="labels"):
        get_objective("supervised", enc, n_classes=2)(Batch(x=x))
