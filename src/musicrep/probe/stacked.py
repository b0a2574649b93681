"""Many linear/MLP probes trained at once as one stacked torch model.

Takes standardised features and a list of configs that share an architecture (same hidden widths);
gives a :class:`Stacked` group whose members ``[L, C]`` are (layer, config) pairs, each trained exactly
as if alone: its own initialisation, dropout rate, L2 coefficient, learning rate, warm-up + cosine
schedule, and its own early-stopping best state.

Why stacked: a probe search is dozens of small models over the same minibatches. Trained one by one
(scikit-learn's ``MLPClassifier`` loop) each pays its own small matmuls and Python overhead; stacked, all
configs of a layer share one large matmul per step (``[B, H] @ [H, C·O]``), and a layer scan adds one
``bmm`` over layers. Members never exchange gradients: the loss is the sum of per-member mean losses.

Why early stopping retires configs: a config whose validation score has not improved for ``patience``
checks is finished; its best state is set aside and it is cut out of the stack, so the remaining steps
cost only what is still learning (scikit-learn keeps paying for a config until its own stopping rule).

Why a hand-written Adam step: ``torch.optim.Adam`` has one learning rate per parameter tensor, while
each slice (member) here needs its own lr schedule and L2 coefficient. The update is textbook Adam
(Kingma & Ba 2015) with L2 added to the gradient, as torch's ``Adam(weight_decay=...)``, written in
place into preallocated buffers so the optimiser costs a few memory passes per step.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from musicrep.probe.grids import ProbeConfig
from musicrep.kinds import Kind

__all__ = ["Stacked", "train_stacked"]

Mode = Literal["select", "weighted"]


def _config_seed(seed: int, cfg: ProbeConfig) -> int:
    """A generator seed from (seed, config contents), stable across runs and platforms."""
    digest = hashlib.sha256(f"{int(seed)}|{cfg.model_dump_json()}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def _cfg_axis(name: str, mode: str) -> int:
    """Axis holding configs in parameter ``name``: W0 of a select stack is laid out ``[L, H, C, O]``."""
    return 2 if (name == "W0" and mode == "select") else 1


def _view(t: torch.Tensor, name: str, mode: str, ndim: int) -> torch.Tensor:
    """Broadcast a per-member ``[L, C]`` tensor against parameter ``name`` (``ndim`` dimensions)."""
    if name == "W0" and mode == "select":
        L, C = t.shape
        return t.reshape(L, 1, C, 1)
    return t.reshape(*t.shape, *([1] * (ndim - 2)))


class Stacked:
    """A stack of ``L × C`` probes (layers × configs) with identical shapes.

    In ``select`` mode member ``(l, c)`` reads layer ``l`` of an input ``[L, N, H]``; its first weight is
    ``W0[l, :, c, :]`` (layout ``[L, H, C, O]`` so one matmul serves all configs without copies). In
    ``weighted`` mode ``L == 1`` and each config learns softmax weights over all ``n_layers`` of an input
    ``[N, n_layers, H]`` (the s3prl / MARBLE weighted sum), inspectable as :meth:`layer_weights`.
    """

    def __init__(self, params: dict[str, torch.Tensor], dropout: torch.Tensor, mode: Mode, n_hidden: int):
        self.params = params
        self.dropout = dropout  # [C]
        self.mode = mode
        self.n_hidden = n_hidden

    @classmethod
    def init(cls, n_members_l: int, configs: Sequence[ProbeConfig], in_dim: int, out_dim: int,
             mode: Mode, n_layers: int, seed: int) -> Stacked:
        """PyTorch ``nn.Linear``'s default init, U(±1/√fan_in), drawn per config from its own generator.

        Why per config: a config's initial weights then depend only on (seed, config), not on which
        other configs share the stack or how the grid was split into blocks — so a config trained in a
        grid equals the same config trained alone.
        """
        C = len(configs)
        hidden = configs[0].hidden
        if any(c.hidden != hidden for c in configs):
            raise ValueError("a stacked group needs configs with identical hidden widths")
        widths = [in_dim, *hidden, out_dim]
        L = 1 if mode == "weighted" else n_members_l
        draws: list[list[torch.Tensor]] = []
        for cfg in configs:
            g = torch.Generator().manual_seed(_config_seed(seed, cfg))
            one = []
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                bound = 1.0 / math.sqrt(a)
                one += [(torch.rand(a, b, generator=g) * 2 - 1) * bound, (torch.rand(b, generator=g) * 2 - 1) * bound]
            draws.append(one)
        params: dict[str, torch.Tensor] = {}
        for i in range(len(widths) - 1):
            W = torch.stack([d[2 * i] for d in draws])  # [C, a, b]
            params[f"W{i}"] = (W.permute(1, 0, 2) if (i == 0 and mode == "select") else W).unsqueeze(0).repeat(
                L, *([1] * W.dim()))
            params[f"b{i}"] = torch.stack([d[2 * i + 1] for d in draws]).unsqueeze(0).repeat(L, 1, 1)
        if mode == "weighted":
            params["alpha"] = torch.zeros(L, C, n_layers)
        dropout = torch.tensor([c.dropout for c in configs], dtype=torch.float32)
        return cls(params, dropout, mode, len(hidden))

    @property
    def shape(self) -> tuple[int, int]:
        return self.params["b0"].shape[0], self.params["b0"].shape[1]

    def layer_weights(self) -> np.ndarray | None:
        """Softmax layer weights ``[L, C, n_layers]`` (weighted mode) or None."""
        if "alpha" not in self.params:
            return None
        return self.params["alpha"].detach().softmax(-1).numpy()

    def forward(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Logits ``[L, C, B, K]``; dropout is applied only when a generator is given (training)."""
        p = self.params
        L, C = self.shape
        if self.mode == "select":
            # x [L, B, H] @ W0 [L, H, C·O]: every config of a layer in one matmul.
            _, H, _, O = p["W0"].shape
            B = x.shape[1]
            h = torch.bmm(x, p["W0"].reshape(L, H, C * O)).reshape(L, B, C, O).transpose(1, 2)
        else:
            # x [B, n_layers, H]: each config mixes the layers with its own softmax weights first.
            B = x.shape[0]
            a = p["alpha"][0].softmax(-1)  # [C, n_layers]
            mixed = torch.einsum("blh,cl->cbh", x, a)
            h = torch.bmm(mixed, p["W0"][0]).unsqueeze(0)
        h = h + p["b0"].unsqueeze(2)
        for i in range(1, self.n_hidden + 1):
            h = torch.relu(h)
            if gen is not None and bool((self.dropout > 0).any()):
                keep = 1.0 - self.dropout.reshape(1, C, 1, 1)
                mask = torch.rand(h.shape, generator=gen) < keep
                h = h * mask / keep
            W = p[f"W{i}"]
            a_, b_ = W.shape[-2:]
            h = torch.bmm(h.reshape(L * C, B, a_), W.reshape(L * C, a_, b_)).reshape(L, C, B, b_)
            h = h + p[f"b{i}"].unsqueeze(2)
        return h

    def select(self, cols: Sequence[int] | torch.Tensor) -> Stacked:
        """The stack restricted to config columns ``cols`` (copies)."""
        idx = torch.as_tensor(cols, dtype=torch.long)
        params = {k: v.detach().index_select(_cfg_axis(k, self.mode), idx) for k, v in self.params.items()}
        return Stacked(params, self.dropout[idx], self.mode, self.n_hidden)

    def take(self, l: int, c: int) -> Stacked:
        """Member ``(l, c)`` alone, as a 1 × 1 stack (what a fitted probe keeps)."""
        one = self.select([c])
        one.params = {k: v[l:l + 1].clone() for k, v in one.params.items()}
        return one

    @staticmethod
    def concat(parts: Sequence[Stacked]) -> Stacked:
        """Join stacks along the config axis (inverse of :meth:`select` over a partition)."""
        mode = parts[0].mode
        params = {k: torch.cat([p.params[k] for p in parts], dim=_cfg_axis(k, mode)) for k in parts[0].params}
        return Stacked(params, torch.cat([p.dropout for p in parts]), mode, parts[0].n_hidden)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Logits without dropout, chunked over items to bound memory."""
        n = x.shape[1] if self.mode == "select" else x.shape[0]
        outs = []
        for s in range(0, max(n, 1), chunk):
            xb = x[:, s:s + chunk] if self.mode == "select" else x[s:s + chunk]
            outs.append(self.forward(xb))
        return torch.cat(outs, dim=2)


def _schedule(n_steps: int, steps: torch.Tensor, warmup: torch.Tensor) -> torch.Tensor:
    """LR factors ``[n_steps, L, C]``: linear warm-up to 1, cosine decay to 0 at ``steps``, then 0 (frozen)."""
    s = torch.arange(n_steps, dtype=torch.float32).reshape(-1, 1, 1)
    warm = (s + 1) / warmup.clamp(min=1)
    progress = ((s - warmup) / (steps - warmup).clamp(min=1)).clamp(0, 1)
    cos = 0.5 * (1 + torch.cos(math.pi * progress))
    f = torch.where(warmup > s, warm, cos)
    return torch.where(steps <= s, torch.zeros_like(f), f)


def train_stacked(
    kind: Kind,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    configs: Sequence[ProbeConfig],
    *,
    out_dim: int,
    mode: Mode,
    x_valid: torch.Tensor | None = None,
    y_valid: torch.Tensor | None = None,
    steps: torch.Tensor | None = None,
    batch_size: int = 256,
    warmup: float = 0.1,
    eval_every: int = 0,
    patience: int = 8,
    halving: int = 0,
    rungs: int = 3,
    seed: int = 0,
    weights: torch.Tensor | None = None,
) -> tuple[Stacked, torch.Tensor]:
    """Train every (layer, config) member; return the stack (best validation state) and best steps ``[L, C]``.

    ``x_*`` is ``[L, N, H]`` in select mode, ``[N, n_layers, H]`` in weighted mode. ``steps`` (``[L, C]``)
    overrides the configs' step counts — used to refit on all training data for the step count chosen
    by k-fold. Without a validation split the final state is kept. A config column retires once every
    layer's member has gone ``patience`` validations without improving (or finished its steps).

    ``halving = η ≥ 2`` adds successive halving (Jamieson & Talwalkar 2016): at ``rungs`` checkpoints,
    ``max_steps / η^r`` for r = rungs … 1 (not before mid warm-up), only the best ``⌈active / η⌉`` columns (by validation score,
    averaged over layers) keep training; the others retire with their best state so far.

    ``weights`` (``[N]``, optional): per-training-item loss weights (e.g. < 1 for augmented copies).
    """
    gen = torch.Generator().manual_seed(int(seed))  # minibatch order, shared by all members
    drop_gen = torch.Generator().manual_seed(int(seed) + 1)  # dropout masks
    n = x_train.shape[1] if mode == "select" else x_train.shape[0]
    L = x_train.shape[0] if mode == "select" else 1
    n_layers = x_train.shape[1] if mode == "weighted" else 1
    model = Stacked.init(L, configs, x_train.shape[-1], out_dim, mode, n_layers, seed)
    C = len(configs)
    if steps is None:
        steps = torch.tensor([[c.steps for c in configs]] * L, dtype=torch.float32)
    steps = steps.float().clone()
    warm = (steps * warmup).round()
    lr = torch.tensor([[c.lr for c in configs]] * L, dtype=torch.float32)
    wd = torch.tensor([[c.weight_decay for c in configs]] * L, dtype=torch.float32)
    max_steps = int(steps.max().item())
    every = eval_every or max(5, max_steps // 50)
    has_valid = x_valid is not None and y_valid is not None
    # Rungs never fall inside the first half of warm-up: ranking configs that have barely begun to move
    # would mostly rank learning rates. Waiting for the whole warm-up, though, kept every config
    # training through the costliest stretch of the search (the full stack); from mid warm-up on, the
    # benchmark's ranking kept the same configs while the full stack stopped at step 22 instead of 30.
    w_mid = math.ceil(float(warm.max().item()) / 2)
    rung_at = ({max(w_mid, round(max_steps / halving ** r)) for r in range(1, rungs + 1)} - {max_steps}
               if halving >= 2 else set())

    # Per-column state, compacted as columns retire. ``cols`` maps positions to original config indices.
    cols = torch.arange(C)
    params = model.params
    for p in params.values():
        p.requires_grad_(True)
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v2 = {k: torch.zeros_like(v) for k, v in params.items()}
    tmp = {k: torch.empty_like(v) for k, v in params.items()}
    best = {k: v.detach().clone() for k, v in params.items()}
    best_score = torch.full((L, C), -float("inf"))
    best_step = steps.clone()
    stale = torch.zeros(L, C, dtype=torch.long)
    done: dict[int, Stacked] = {}
    done_step: dict[int, torch.Tensor] = {}
    b1, b2, eps = 0.9, 0.999, 1e-8

    # The whole lr table [max_steps, L, C] up front: one tensor op per step instead of a dozen.
    rates = _schedule(max_steps, steps, warm) * lr
    first_end = int(steps.max(0).values.min().item())
    bs = min(batch_size, n)
    perm = torch.randperm(n, generator=gen)
    pos = 0
    for t in range(max_steps):
        if pos + bs > n:
            perm = torch.randperm(n, generator=gen)
            pos = 0
        idx = perm[pos:pos + bs]
        pos += bs
        xb = x_train[:, idx] if mode == "select" else x_train[idx]
        no_cols = torch.zeros(len(cols), dtype=torch.bool)
        out = model.forward(xb, drop_gen)
        loss = kind.loss_fn(out, y_train[idx], None if weights is None else weights[idx])
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            # Adam with L2 in the gradient, in eight memory passes per tensor (was eleven). The bias corrections
            # are folded into scalars: rate·m̂/(√v̂+ε) = (rate/(1-β1ᵗ)·√(1-β2ᵗ)) · m/(√v + ε·√(1-β2ᵗ)).
            c2 = math.sqrt(1 - b2 ** (t + 1))
            step = rates[t] * (-c2 / (1 - b1 ** (t + 1)))  # [L, C], negative: addcmul_ subtracts
            names = list(params)
            P, M, V, T = list(params.values()), [m[k] for k in names], [v2[k] for k in names], [tmp[k] for k in names]
            G = list(grads)
            for i, k in enumerate(names):  # L2: grad += wd * w (weights only)
                if k.startswith("W"):
                    G[i].addcmul_(P[i], _view(wd, k, mode, P[i].dim()))
            torch._foreach_lerp_(M, G, 1 - b1)
            torch._foreach_mul_(V, b2)
            torch._foreach_addcmul_(V, G, G, value=1 - b2)
            for tt, vv, mm in zip(T, V, M, strict=True):
                torch.sqrt(vv, out=tt).add_(eps * c2)
                torch.div(mm, tt, out=tt)
            for pp, tt, k in zip(P, T, names, strict=True):
                pp.addcmul_(tt, _view(step, k, mode, pp.dim()))
        finished = (steps <= t + 1).all(0) if t + 1 >= first_end else no_cols  # [C] past their last step
        if has_valid and ((t + 1) % every == 0 or t + 1 == max_steps or t + 1 in rung_at):
            with torch.no_grad():
                score = kind.early_stop_score(model.forward(x_valid), y_valid)
                better = score > best_score
                best_score = torch.where(better, score, best_score)
                best_step = torch.where(better, torch.full_like(best_step, t + 1), best_step)
                stale = torch.where(better, torch.zeros_like(stale), stale + 1)
                for k, p in params.items():
                    best[k] = torch.where(_view(better, k, mode, p.dim()), p.detach(), best[k])
            finished = finished | (stale >= patience).all(0)
            if t + 1 in rung_at:
                alive = torch.nonzero(~finished).flatten()
                n_keep = math.ceil(len(alive) / halving)
                col_score = best_score.mean(0)[alive]
                order = torch.argsort(col_score, descending=True, stable=True)
                finished[alive[order[n_keep:]]] = True
        if bool(finished.any()):
            fin = torch.nonzero(finished).flatten()
            keep = torch.nonzero(~finished).flatten()
            src = Stacked(best if has_valid else {k: v.detach() for k, v in params.items()},
                          model.dropout, mode, model.n_hidden)
            for j in fin.tolist():
                done[int(cols[j])] = src.select([j])
                done_step[int(cols[j])] = best_step[:, j].clone()
            if keep.numel() == 0:
                break
            # Compact: cut retired columns out of every per-column tensor.
            def sel(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
                return {k: v.detach().index_select(_cfg_axis(k, mode), keep).contiguous() for k, v in d.items()}
            params = sel(params)
            for p in params.values():
                p.requires_grad_(True)
            m, v2, best = sel(m), sel(v2), sel(best)
            tmp = {k: torch.empty_like(v) for k, v in params.items()}
            model = Stacked(params, model.dropout[keep], mode, model.n_hidden)
            cols, steps, rates, wd = cols[keep], steps[:, keep], rates[:, :, keep], wd[:, keep]
            first_end = int(steps.max(0).values.min().item())
            best_score, best_step, stale = best_score[:, keep], best_step[:, keep], stale[:, keep]
    # Columns still active when the loop ended (possible only if max_steps was 0).
    src = Stacked(best if has_valid else {k: v.detach() for k, v in params.items()},
                  model.dropout, mode, model.n_hidden)
    for j in range(len(cols)):
        if int(cols[j]) not in done:
            done[int(cols[j])] = src.select([j])
            done_step[int(cols[j])] = best_step[:, j].clone()
    final = Stacked.concat([done[c] for c in range(C)])
    return final, torch.stack([done_step[c] for c in range(C)], dim=1)
