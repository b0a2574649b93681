"""Pons & Serra's MusiCNN (MTT / MSD weights from the ``musicnn`` wheel), run in its own TensorFlow venv.

Registers ``musicnn-tf``: audio ``[B, samples]`` at 16 kHz → ``[B, 9, T, 753]`` (musicnn's own feature taps,
one frame per ``input_length - input_overlap`` seconds). musicnn needs TensorFlow (1.x graph API) and
numpy<2, so it runs in a separate venv (``make musicnn-venv`` or ``$MUSICREP_MUSICNN_PYTHON``): this module
starts :data:`WORKER_SCRIPT` (``musicnn_worker.py``) with that venv's python, one persistent process per
instance, and talks to it in JSON lines over stdin/stdout (protocol in the worker's docstring).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from musicrep.models import register
from musicrep.models.base import Representation, WeightsError
from musicrep.models.packaged.wheel import PackageRepresentation, stack_layers

__all__ = ["MUSICNN_DEFAULT_VENV", "WORKER_SCRIPT", "MusicnnTF", "musicnn_available", "musicnn_python"]


#: Default location of the TensorFlow venv built by ``make musicnn-venv``.
MUSICNN_DEFAULT_VENV = Path(os.environ.get("MUSICREP_CACHE", Path.home() / ".cache" / "musicrep")) / "musicnn-venv"
_MUSICNN_LAYERS = {  # musicnn extractor feature name → width (musicnn architecture; the mid-end convs have 64
    # filters in both MTT_musicnn and MSD_musicnn — 561 = 408 + 153 is their *input* width)
    "timbral": 408, "temporal": 153, "cnn1": 64, "cnn2": 64, "cnn3": 64,
    "mean_pool": 753, "max_pool": 753, "penultimate": 200, "taggram": 50,
}

#: The worker script, run by the TensorFlow venv's python (it imports nothing from musicrep).
WORKER_SCRIPT = Path(__file__).with_name("musicnn_worker.py")


def _stop_worker(proc: subprocess.Popen, log: Any, owner: int) -> None:
    """Close a worker: EOF on its stdin ends its loop; kill it if it does not exit within 5 s.

    Only the process that started the worker stops it (a forked child holding a copy must not).
    """
    if os.getpid() != owner:
        return
    try:
        if proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for f in (proc.stdin, proc.stdout, log):
            try:
                f.close()  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass


class _MusicnnWorker:
    """One persistent TensorFlow subprocess: started once, then one JSON line per request and per reply.

    Closed by :meth:`close`, when garbage-collected, or at interpreter exit (``weakref.finalize``).
    stderr goes to a temp file (a pipe nobody reads could fill up and block TF); its tail is quoted on errors.
    """

    def __init__(self, python: Path, cfg: dict[str, Any], timeout: float) -> None:
        self.python, self.timeout, self.owner = python, timeout, os.getpid()
        self._log = tempfile.TemporaryFile(prefix="musicrep-musicnn-", suffix=".log")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        self.proc = subprocess.Popen([str(python), str(WORKER_SCRIPT), json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env, text=True, bufsize=1)
        self._finalizer = weakref.finalize(self, _stop_worker, self.proc, self._log, self.owner)
        self._reply()  # wait for "graph built, checkpoint restored"

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.proc.poll() is None

    def _stderr_tail(self) -> str:
        try:
            self._log.seek(0)
            return "\n".join(self._log.read().decode(errors="replace").strip().splitlines()[-8:])
        except (OSError, ValueError):
            return ""

    def _fail(self, why: str) -> RuntimeError:
        tail = self._stderr_tail()
        self.close()
        return RuntimeError(f"musicnn-tf worker ({self.python}) {why}:\n{tail}")

    def _reply(self) -> None:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(self.timeout):
                raise self._fail(f"gave no answer within {self.timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            raise self._fail("exited")
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            raise self._fail(f"sent garbage {line[:200]!r}") from None
        if not msg.get("ok"):
            err = "\n".join(str(msg.get("error", "")).strip().splitlines()[-5:])
            raise RuntimeError(f"musicnn-tf worker ({self.python}) failed:\n{err}")

    def request(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise self._fail("is gone (broken pipe)") from None
        self._reply()

    def close(self) -> None:
        self._finalizer()


def musicnn_python() -> Path:
    """The interpreter of the MusiCNN TensorFlow venv: ``$MUSICREP_MUSICNN_PYTHON`` or the default venv."""
    env = os.environ.get("MUSICREP_MUSICNN_PYTHON")
    return Path(env) if env else MUSICNN_DEFAULT_VENV / "bin" / "python"


def musicnn_available() -> tuple[bool, str]:
    py = musicnn_python()
    if not py.is_file():
        return False, (f"needs file {py}: run `make musicnn-venv` (tensorflow-cpu 2.15.1, numpy<2, musicnn) "
                       f"or set MUSICREP_MUSICNN_PYTHON to such a venv's python")
    return True, ""


class MusicnnTF(PackageRepresentation):
    """Pons & Serra's MusiCNN (MTT or MSD weights from the ``musicnn`` wheel) run in its own venv.

    Why a subprocess: musicnn needs TensorFlow (1.x graph API) and numpy<2, which cannot share a process
    with this package's torch/numpy 2. Protocol: ONE persistent worker per instance (started on the first
    :meth:`embed`, so TensorFlow is imported and the checkpoint restored once) reads one JSON request per
    line on stdin; clips travel as 16 kHz float wav files in a temp dir (so musicnn's own ``batch_data``
    front-end reads them exactly as its extractor would), all patches of all clips run through the graph
    together, and the layers come back in one ``.npz``. :meth:`close` (or garbage collection, or interpreter
    exit) ends the worker. Layers are musicnn's own feature taps, one frame per ``input_length -
    input_overlap`` seconds.

    Unlike ``musicnn.extractor`` (which runs one patch at a time and, from the 2nd patch on, re-appends the
    *first* patch's ``cnn1``–``cnn3`` and ``penultimate`` — a variable-name bug in its loop), every patch of
    a clip longer than one window gets its own features. Single-window clips are unchanged.
    """

    name = "musicnn-tf"
    sample_rate = 16_000
    centered_frames = False  # patch k covers [k, k + 1) hops

    def __init__(self, model: str = "MTT_musicnn", input_length: float = 3.0, input_overlap: float = 0.0,
                 python: str | None = None, timeout: float = 600.0) -> None:
        if model not in {"MTT_musicnn", "MSD_musicnn"}:  # the two musicnn models the wheel ships
            raise ValueError(f"musicnn-tf: model must be MTT_musicnn or MSD_musicnn, got {model!r}")
        self.model, self.input_length, self.input_overlap = model, float(input_length), float(input_overlap)
        self.python = Path(python) if python else musicnn_python()
        if not self.python.is_file():
            raise WeightsError(f"{self.python}: MusiCNN venv python not found; run `make musicnn-venv`")
        self.timeout = timeout
        self._worker: _MusicnnWorker | None = None
        self._lock = threading.Lock()
        self.frame_rate = 1.0 / (self.input_length - self.input_overlap)
        self.window_seconds = self.input_length
        self.layer_names = list(_MUSICNN_LAYERS)
        self.layer_dims = list(_MUSICNN_LAYERS.values())

    def config(self) -> dict[str, Any]:
        return {"model": self.model, "input_length": self.input_length, "input_overlap": self.input_overlap}

    def weights_checksum(self) -> str:
        # "+w2": outputs of clips longer than one window and the cnn1-3 widths changed with the persistent
        # worker (extractor bug fixed), so embeddings stored under the old id must not be reused
        return f"{self.model}+w2"

    def n_frames(self, n_samples: int) -> int:
        return max(1, int(np.floor((n_samples / self.sample_rate - self.input_length)
                                   / (self.input_length - self.input_overlap))) + 1)

    def _get_worker(self) -> _MusicnnWorker:
        w = self._worker
        if w is None or not w.alive or w.owner != os.getpid():
            # TF gets the caller's torch thread budget (1 per ray worker) instead of every core
            cfg = {"model": self.model, "input_length": self.input_length, "input_overlap": self.input_overlap,
                   "threads": torch.get_num_threads()}
            w = self._worker = _MusicnnWorker(self.python, cfg, self.timeout)
        return w

    def close(self) -> None:
        """Stop the TensorFlow worker now (it is also stopped on garbage collection and at exit)."""
        with self._lock:
            if self._worker is not None and self._worker.owner == os.getpid():
                self._worker.close()
            self._worker = None

    def __enter__(self) -> MusicnnTF:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # a pickled copy (e.g. to another process) starts its own worker
        return {k: v for k, v in vars(self).items() if k not in ("_worker", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._worker, self._lock = None, threading.Lock()

    def embed(self, audio: Tensor) -> Tensor:
        import soundfile as sf

        x = torch.as_tensor(audio, dtype=torch.float32)
        if x.ndim == 1:
            x = x[None]
        n_in = x.shape[1]
        min_len = int(np.ceil(self.input_length * self.sample_rate)) + 1
        if x.shape[1] < min_len:  # musicnn cannot cut a patch from a clip shorter than one window
            x = torch.nn.functional.pad(x, (0, min_len - x.shape[1]))
        with self._lock, tempfile.TemporaryDirectory(prefix="musicrep-musicnn-") as tmp:
            wavs = []
            for i, a in enumerate(x.detach().cpu().numpy()):
                wavs.append(str(Path(tmp, f"{i}.wav")))
                sf.write(wavs[-1], a, self.sample_rate, subtype="FLOAT")
            out = str(Path(tmp, "out.npz"))
            self._get_worker().request({"wavs": wavs, "layers": self.layer_names, "out": out})
            with np.load(out) as z:
                per_item = [[z[f"{i}:{k}"] for k in self.layer_names] for i in range(len(wavs))]
        return stack_layers(per_item, self.n_frames(n_in))


@register("musicnn-tf", "pretrained", "MusiCNN MTT/MSD (Pons & Serra) via its TensorFlow venv (make musicnn-venv)",
          available=musicnn_available)
def _musicnn_tf(**cfg: Any) -> Representation:
    return MusicnnTF(**cfg)
