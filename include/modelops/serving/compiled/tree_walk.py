"""Many decision trees walked at once: every (row, tree) pair takes one step per depth level.

The trees' nodes are concatenated into flat arrays (child indices made global); a leaf points
to itself, so rows that reached a leaf early stay there while deeper ones go on. The rule per
node is sklearn's: NaN goes where the node sent missing values in training, else
``x <= threshold`` goes left. Rows are walked in chunks so the (rows x trees) index arrays stay small.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Rows per chunk: (rows x trees) node indices of a chunk stay within a few MB.
CHUNK_ELEMENTS = 200_000


class TreeWalker:
    """Flat arrays of several trees; :meth:`leaves` gives each row's leaf in every tree."""

    def __init__(
        self,
        features: Sequence[np.ndarray],
        thresholds: Sequence[np.ndarray],
        lefts: Sequence[np.ndarray],
        rights: Sequence[np.ndarray],
        is_leaf: Sequence[np.ndarray],
        missing_left: Sequence[np.ndarray],
        depth: int,
    ):
        sizes = [len(f) for f in features]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self.roots = offsets
        self.depth = int(depth)
        own = [np.arange(n, dtype=np.intp) + off for n, off in zip(sizes, offsets, strict=True)]
        leaf = np.concatenate([np.asarray(x, dtype=bool) for x in is_leaf])
        self.feature = np.where(leaf, 0, np.concatenate([np.asarray(f, dtype=np.intp) for f in features]))
        self.threshold = np.where(leaf, 0.0, np.concatenate([np.asarray(t, dtype=np.float64) for t in thresholds]))
        left = np.concatenate([np.asarray(lt, dtype=np.intp) + off for lt, off in zip(lefts, offsets, strict=True)])
        right = np.concatenate([np.asarray(r, dtype=np.intp) + off for r, off in zip(rights, offsets, strict=True)])
        self_index = np.concatenate(own)
        self.left = np.where(leaf, self_index, left)
        self.right = np.where(leaf, self_index, right)
        self.missing_left = np.where(leaf, True, np.concatenate([np.asarray(m, dtype=bool) for m in missing_left]))

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf index of each row (axis 0) in each tree (axis 1)."""
        rows, trees = X.shape[0], len(self.roots)
        step = max(1, CHUNK_ELEMENTS // max(1, trees))
        if rows <= step:
            return self._walk(X)
        return np.concatenate([self._walk(X[start : start + step]) for start in range(0, rows, step)])

    def _walk(self, X: np.ndarray) -> np.ndarray:
        rows, width = X.shape
        flat = np.ascontiguousarray(X).reshape(-1)
        base = (np.arange(rows, dtype=np.intp) * width)[:, None]
        node = np.broadcast_to(self.roots, (rows, len(self.roots))).copy()
        has_nan = bool(np.isnan(flat).any())
        # ndarray.take: the cheapest gather numpy has for these (no fancy-indexing machinery, no wrapper).
        feature, threshold, left, right = self.feature.take, self.threshold.take, self.left.take, self.right.take
        for _ in range(self.depth):
            x = flat.take(base + feature(node))
            go_left = x <= threshold(node)
            if has_nan:
                go_left |= np.isnan(x) & self.missing_left.take(node)
            node = np.where(go_left, left(node), right(node))
        return node
