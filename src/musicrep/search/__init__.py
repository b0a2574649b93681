"""Similarity search over embeddings (faiss): build an index of clips, find a clip's nearest neighbours.

Takes vectors ``[N, D]`` (or audio, embedded by a representation) and one metadata row per vector; gives
``(scores [Q, k], ids [Q, k])`` and neighbour tables. :mod:`~musicrep.search.index` is the vector index
(exact below 100k items, IVF above; save / load a folder), :mod:`~musicrep.search.build` fills one from
audio through the embedding store, :mod:`~musicrep.search.cli` is ``musicrep index …``. The ``knn-index``
probe (:mod:`musicrep.probe.neighbors`) votes over an index of training items. Needs the ``search`` extra
(``faiss-cpu``).
"""

from musicrep.search.build import add_audio, build_index, embed_files, query_file, representation_of
from musicrep.search.index import EXACT_BELOW, KINDS, METRICS, Index, SearchError, exact_search, recall_at

__all__ = ["Index", "SearchError", "build_index", "add_audio", "query_file", "representation_of", "embed_files",
           "exact_search", "recall_at", "METRICS", "KINDS", "EXACT_BELOW"]
