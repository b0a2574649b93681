"""The trainer (musicrep.train.trainer / .config): schedule, bit-exact resume after SIGKILL, DDP = one process,
checkpoint = representation, config errors naming the key, steps independent of the budget.

Data and objective are the stand-ins of tests/trainer_stubs.py (the real ones live in train/data.py and
train/objectives/ and are tested there); the trainer only relies on their interfaces.
"""

from __future__ import annotations

import yaml

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import trainer_stubs  # noqa: E402

from musicrep import models  # noqa: E402
from musicrep.train.config import PretrainConfigError, load_pretrain, preset_data  # noqa: E402
from musicrep.train.trainer import Trainer, lr_factor  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
STUBS = Path(__file__).resolve().parent / "trainer_stubs.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(STUBS.parent), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _one_thread_run(out: Path, **kw: object) -> Trainer:
    """A run in this process with one intra-op thread (as the subprocess runs use), threads restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg, obj, data = trainer_stubs.make(out, **kw)  # type: ignore[arg-type]
        trainer = Trainer(cfg, obj, data)
        trainer.run()
        return trainer
    finally:
        torch.set_num_threads(n)


def test_warmup_cosine_schedule_by_hand() -> None:
    # warm-up 4, 12 steps, peak 1: updates 0..3 at 1/4, 2/4, 3/4, 4/4; then ½(1 + cos(π (s − 4) / 8))
    expected = {0: 0.25, 1: 0.5, 3: 1.0, 4: 1.0, 6: 0.5 * (1 + math.cos(math.pi / 4)), 8: 0.5,
                10: 0.5 * (1 - math.sqrt(0.5)), 11: 0.5 * (1 + math.cos(7 * math.pi / 8)), 12: 0.0}
    for s, v in expected.items():
        assert lr_factor(s, 4, 12) == pytest.approx(v, abs=1e-12)
    assert lr_factor(0, 0, 10) == 1.0  # no warm-up: cosine from the first update
    # through the trainer's optimiser/scheduler: the rate of each update as the curves record it
    cfg, obj, data = trainer_stubs.make(Path("/nonexistent"), steps=12, warmup_steps=4, lr=2e-3)
    opt, sched = Trainer(cfg, obj, data)._optimiser()
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([2e-3 * lr_factor(s, 4, 12) for s in range(12)], abs=1e-15)
    assert seen[8] == pytest.approx(1e-3)


def test_resume_after_sigkill_gives_identical_weights(tmp_path: Path) -> None:
    steps = 8
    full = _one_thread_run(tmp_path / "full", steps=steps, checkpoint_every=2)
    killed = tmp_path / "killed"
    cmd = [sys.executable, str(STUBS), str(killed), "--steps", str(steps), "--checkpoint-every", "2", "--sleep", "0.4"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = killed / "state" / "trainer.pt"
    deadline = time.monotonic() + 60
    while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    out = proc.communicate(timeout=30)[0].decode()
    assert state.is_file(), out
    at_kill = torch.load(state, weights_only=True)["step"]
    assert 0 < at_kill < steps, "the run was not interrupted mid-way"
    with pytest.raises(PretrainConfigError, match="--resume"):  # an existing checkpoint is never overwritten
        Trainer(*trainer_stubs.make(killed, steps=steps)).run()
    res = subprocess.run(cmd[:-2] + ["--resume"], env=_env(), capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    a, b = load_file(str(full.out / "weights.safetensors")), load_file(str(killed / "weights.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = torch.load(full.out / "state" / "trainer.pt", weights_only=True)
    sb = torch.load(state, weights_only=True)
    for k, v in sa["objective"].items():  # heads too, not only the encoder
        assert torch.equal(v, sb["objective"][k]), k
    assert sb["step"] == steps
    assert [r["loss"] for r in sa["curves"]] == [r["loss"] for r in sb["curves"]]


def test_checkpoint_is_a_representation(tmp_path: Path) -> None:
    trainer = _one_thread_run(tmp_path / "ckpt", steps=3, checkpoint_every=3)
    ckpt = trainer.out
    for name in ("weights.safetensors", "model.json", "config.yaml", "meta.json", "curves.csv", "state/trainer.pt"):
        assert (ckpt / name).is_file(), name
    twin = models.get("vgg", size="small", seed=0)
    rep = models.get("vgg", weights=ckpt)  # size etc. from model.json
    assert rep.id != twin.id
    assert rep.id == trainer.encoder.id  # the id follows the trained weights
    import json

    assert json.loads((ckpt / "meta.json").read_text())["representation_id"] == rep.id
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 48_000)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        assert not torch.allclose(rep.embed(audio), twin.embed(audio))
    # as an evaluate/embed/study YAML names it
    from musicrep.config import RepresentationConfig

    built = RepresentationConfig(name="vgg", config={"weights": str(ckpt)}).build()
    assert built.id == rep.id
    with pytest.raises(models.WeightsError, match="model.json: a vgg checkpoint, not tmae"):
        models.get("tmae", weights=ckpt)


def _ddp_worker(rank: int, out: str, port: int, result: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    # noise 0: the stand-in's input noise is drawn per (step, rank), so ranks would not see the single
    # process's noise; the real objectives' random draws differ per rank the same way
    cfg, obj, data = trainer_stubs.make(Path(out), model="tmae", steps=1, batch_size=8, checkpoint_every=1, noise=0.0)
    Trainer(cfg, obj, data).run()
    if rank == 0:
        torch.save({k: p.grad for k, p in obj.named_parameters() if p.grad is not None}, result)
    import torch.distributed as dist

    dist.destroy_process_group()


def test_ddp_two_processes_equal_one_process_on_the_global_batch(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    grads = tmp_path / "grads.pt"
    single = _one_thread_run(tmp_path / "one", model="tmae", steps=1, batch_size=8, checkpoint_every=1, noise=0.0)
    # fork (after the single run has loaded every module): the children start in a second, not after
    # importing torch and the model registry again
    mp.start_processes(_ddp_worker, args=(str(tmp_path / "ddp"), port, str(grads)), nprocs=2, start_method="fork")
    g_ddp = torch.load(grads, weights_only=True)
    g_one = {k: p.grad for k, p in single.objective.named_parameters() if p.grad is not None}
    assert g_ddp.keys() == g_one.keys() and g_one
    for k in g_one:
        torch.testing.assert_close(g_ddp[k], g_one[k], atol=1e-6, rtol=1e-5, msg=k)
    # the updated weights, where the gradient is not numerically zero: AdamW's first update is about
    # lr·g/|g|, so an element whose true gradient is 0 (e.g. attention's key bias) moves by ±lr on rounding
    # noise in either run
    a = load_file(str(tmp_path / "ddp" / "weights.safetensors"))
    b = load_file(str(single.out / "weights.safetensors"))
    for k in b:
        real = g_one[f"encoder.{k}"].abs() > 1e-4
        assert real.any() or k.endswith("in_proj_bias"), k
        torch.testing.assert_close(a[k][real], b[k][real], atol=1e-6, rtol=1e-5, msg=k)


def test_bad_key_in_a_pretrain_yaml_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("model: vgg\nobjective: simclr\nsteps: 10\nlearning_rate: 0.1\n")
    with pytest.raises(PretrainConfigError, match=r"p\.yaml(.|\n)*learning_rate: unknown key"):
        load_pretrain(path)
    path.write_text("model: vgg\nobjective: simclr\nsteps: -1\n")
    with pytest.raises(PretrainConfigError, match="steps"):
        load_pretrain(path)
    with pytest.raises(PretrainConfigError, match="unknown preset 'tiny'"):
        load_pretrain(preset="tiny")
    with pytest.raises(PretrainConfigError, match="not found"):
        load_pretrain(tmp_path / "missing.yaml")


def test_presets_load_and_cli_values_override(tmp_path: Path) -> None:
    for name in ("smoke", "laptop", "paper"):
        assert preset_data(name)  # packaged, parseable
        cfg = load_pretrain(preset=name, pool=tmp_path, out=tmp_path / name)
        assert cfg.steps > 0 and cfg.out == tmp_path / name
    paper = load_pretrain(preset="paper", pool=tmp_path)
    assert (paper.lr, paper.warmup_steps, paper.steps, paper.batch_size) == (2e-4, 5000, 200_000, 512)
    cfg = load_pretrain(preset="smoke", pool=tmp_path, minutes="5", steps=7)
    assert cfg.minutes == 5 and cfg.steps == 7
    # laptop sizes runs per encoder (musicnn steps are ~4x slower than vgg's); an explicit value still wins
    laptop = yaml.safe_load((Path(__file__).resolve().parents[1] / "src/musicrep/presets/pretrain/laptop.yaml")
                            .read_text())
    slow = load_pretrain(preset="laptop", pool=tmp_path, model="musicnn")
    assert slow.steps == laptop["by_model"]["musicnn"]["steps"] != laptop["steps"]
    assert load_pretrain(preset="laptop", pool=tmp_path, model="musicnn", steps=9).steps == 9
    # another objective than the preset's does not inherit the preset's objective settings
    assert load_pretrain(preset="paper", pool=tmp_path, objective="masked").objective_config == {}


def test_number_of_steps_does_not_depend_on_the_budget(tmp_path: Path) -> None:
    runs = []
    for minutes, tracks in ((5, 2), ("all", 200)):
        cfg, obj, data = trainer_stubs.make(tmp_path / f"b{minutes}", steps=3, batch_size=2, checkpoint_every=100,
                                            minutes=minutes, n_tracks=tracks, val_every=3)
        Trainer(cfg, obj, data, val=[data.global_batch(10**6)]).run()
        runs.append((data.calls, torch.load(cfg.out / "state" / "trainer.pt", weights_only=True)))
    for calls, state in runs:
        assert calls == [0, 1, 2]
        assert state["step"] == 3 and [r["step"] for r in state["curves"]] == [1, 2, 3]
        assert [type(r["val_loss"]) for r in state["curves"]] == [str, str, float]  # validated at step 3 only


def test_cli_pretrain_errors_are_one_line_naming_the_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicrep.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: vgg\nobjective: simclr\nsteps: 5\nbatchsize: 8\n")
    res = CliRunner().invoke(app, ["pretrain", str(bad)])
    assert res.exit_code == 2
    assert "batchsize: unknown key" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["pretrain", "--preset", "smoke", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "pool" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["pretrain", "--preset", "smoke", "--pool", str(tmp_path), "--resume",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no checkpoint to resume" in res.output


def test_cli_pretrain_smoke_then_evaluate_the_checkpoint(tmp_path: Path) -> None:
    """The issue's 'done when', as a user types it: render a little music, pool it, `musicrep pretrain
    --preset smoke`, then `musicrep evaluate` with {name: vgg, config: {weights: DIR}} (a real run of the
    real data pipeline and objective, a few steps)."""
    import yaml
    from typer.testing import CliRunner

    from musicrep.cli import app
    from musicrep.results import read_results

    runner = CliRunner()
    music = tmp_path / "music"
    ok = runner.invoke(app, ["data", "render", "tagging", "--out", str(music), "--n", "12"])
    assert ok.exit_code == 0, ok.output
    pool = tmp_path / "pool"
    ok = runner.invoke(app, ["data", "pool", "--from", str(music / "audio"), "--out", str(pool)])
    assert ok.exit_code == 0, ok.output
    ckpt = tmp_path / "ckpt"
    with pytest.warns(UserWarning, match="more than the"):  # the smoke preset's 5 minutes; the pool has ~2
        ok = runner.invoke(app, ["pretrain", "--preset", "smoke", "--pool", str(pool), "--steps", "3",
                                 "--out", str(ckpt)])
    assert ok.exit_code == 0, ok.output
    assert (ckpt / "weights.safetensors").is_file() and (ckpt / "curves.csv").is_file()
    before = (ckpt / "weights.safetensors").read_bytes()
    ok = runner.invoke(app, ["pretrain", "--resume", "--out", str(ckpt)])  # the saved settings; nothing left to do
    assert ok.exit_code == 0, ok.output
    assert "already complete" in ok.output
    assert (ckpt / "weights.safetensors").read_bytes() == before
    cfg = {"out": str(tmp_path / "eval"), "tasks": [str(music)], "probes": ["linear"], "grid": "faster",
           "layers": "last", "bootstrap": 20,
           "representations": [{"name": "vgg", "config": {"weights": str(ckpt)}, "label": "vgg-smoke"},
                               {"name": "vgg", "config": {"size": "small", "seed": 0}, "label": "vgg-random"}]}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    ok = runner.invoke(app, ["evaluate", str(tmp_path / "eval.yaml")])
    assert ok.exit_code == 0, ok.output
    res = read_results(tmp_path / "eval" / "results.csv")
    ids = res.groupby("representation")["rep_id"].first()
    assert set(ids.index) == {"vgg-smoke", "vgg-random"}
    assert ids["vgg-smoke"] != ids["vgg-random"]  # the trained weights are another representation


def test_torchrun_two_processes_run_the_real_pretrain_command(tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2 -m musicrep.cli pretrain …` as docs/scale.md tells a user to type it: the
    real data pipeline and objective over gloo, one checkpoint written by rank 0 that records world size 2,
    and weights that moved from the random init (the DDP arithmetic itself is checked against one process
    in test_ddp_two_processes_equal_one_process_on_the_global_batch)."""
    from typer.testing import CliRunner

    from musicrep.cli import app

    runner = CliRunner()
    music, pool, out = tmp_path / "music", tmp_path / "pool", tmp_path / "ddp"
    assert runner.invoke(app, ["data", "render", "tagging", "--out", str(music), "--n", "12"]).exit_code == 0
    assert runner.invoke(app, ["data", "pool", "--from", str(music / "audio"), "--out", str(pool)]).exit_code == 0
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun) if torchrun.exists() else sys.executable, *([] if torchrun.exists() else
           ["-m", "torch.distributed.run"]), "--standalone", "--nproc_per_node", "2", "-m", "musicrep.cli",
           "pretrain", "--preset", "smoke", "--pool", str(pool), "--steps", "2", "--minutes", "all",
           "--out", str(out), "--device", "cpu", "-q"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[:6000]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 2
    assert not list(out.glob("*.tmp*")) and sorted(p.name for p in out.glob("weights*")) == ["weights.safetensors"]
    trained = load_file(str(out / "weights.safetensors"))
    init = models.get("vgg", size="small", seed=meta.get("seed", 0)).state_dict()
    shared = [k for k in init if k in trained and init[k].is_floating_point()]
    assert shared and any(not torch.equal(trained[k], init[k]) for k in shared)
