"""Shallow probes on frozen embeddings: linear, MLP, kNN, nearest centroid and zero-shot rules, with named grids.

Takes per-item embeddings ``[N, L, H]`` and task targets, grouped as a :class:`ProbeData` (the splits)
and a :class:`ProbeSetup` (probe, grid, layer choice, seed); gives fitted probes and tidy test-split rows.
Entry points: :func:`fit_probe` (search + select, returns a :class:`FittedProbe`), :func:`evaluate_probe`
(rows named like ``results.csv``, with bootstrap CIs), :func:`cross_validate_probe` (the same rows from
k-fold out-of-fold predictions of every item), the :data:`PROBES` registry and the :data:`GRIDS`
(``faster | fast | default``).
"""

from musicrep.probe.fit import PROBES, FittedProbe, ProbeSpec, Standardizer, evaluate_probe, fit_probe
from musicrep.probe.crossval import cross_validate_probe
from musicrep.probe.grids import GRIDS, ProbeConfig, ProbeGrid, get_grid
from musicrep.probe.types import LayerChoice, ProbeData, ProbeSetup, Split

__all__ = ["fit_probe", "evaluate_probe", "cross_validate_probe", "FittedProbe", "PROBES", "ProbeSpec", "GRIDS", "ProbeGrid",
           "ProbeConfig", "get_grid", "Standardizer", "ProbeData", "ProbeSetup", "Split", "LayerChoice"]
