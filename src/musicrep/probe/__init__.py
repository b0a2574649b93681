"""Shallow probes on frozen embeddings: linear, MLP, kNN and nearest centroid, with named HP grids.

Takes per-item embeddings ``[N, L, H]`` and task targets; gives fitted probes and tidy test-split rows.
Entry points: :func:`fit_probe` (search + select, returns a :class:`FittedProbe`), :func:`evaluate_probe`
(rows with bootstrap CIs), the :data:`PROBES` registry and the :data:`GRIDS` (``faster | fast | default``).
"""

from musicrep.probe.fit import PROBES, FittedProbe, ProbeSpec, Standardizer, evaluate_probe, fit_probe
from musicrep.probe.grids import GRIDS, ProbeConfig, ProbeGrid, get_grid
from musicrep.probe.kinds import KINDS

__all__ = ["fit_probe", "evaluate_probe", "FittedProbe", "PROBES", "ProbeSpec", "GRIDS", "ProbeGrid",
           "ProbeConfig", "get_grid", "Standardizer", "KINDS"]
