"""Many decision trees walked at once: every (tree, row) pair takes one step per depth level.

The trees' nodes are concatenated into flat arrays (child indices made global); a leaf points
to itself, so pairs that reached a leaf early stay there while deeper ones go on. The rule per
node is sklearn's: NaN goes where the node sent missing values in training, else
``x <= threshold`` goes left.

Two layouts, chosen by the batch size (the same leaves either way):

* **depth-sorted** (batches of ``SMALL_ROWS`` rows or more): trees ordered deepest first, one
  row of node indices per tree, so level L walks only the trees deeper than L (a contiguous
  slice): the work is the sum of the trees' depths, not the deepest depth times the tree count
  (boosted trees of 31 leaves are ~11 deep on average, the deepest ~20: about half the work);
* **flat** (a few rows): every pair for ``max depth`` levels, without the per-level slicing
  whose fixed cost a single record would feel.

Node ids are kept doubled (``2 * node``, as ``intp``: numpy's gathers take it without a conversion)
so a step is one gather: ``children[2n + right]``.
Rows are walked in chunks so the (trees x rows) index arrays stay small.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Rows per chunk: (rows x trees) node indices of a chunk stay within a few MB.
CHUNK_ELEMENTS = 200_000
#: From this many rows on, the depth-sorted layout (fewer steps) beats the flat one (fewer calls).
SMALL_ROWS = 16


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
        depths: Sequence[int],
    ):
        sizes = [len(f) for f in features]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        if len(depths) != len(sizes):
            raise ValueError(f"{len(depths)} depths for {len(sizes)} trees")
        own = [np.arange(n, dtype=np.int64) + off for n, off in zip(sizes, offsets, strict=True)]
        leaf = np.concatenate([np.asarray(x, dtype=bool) for x in is_leaf])
        feature = np.where(leaf, 0, np.concatenate([np.asarray(f, dtype=np.int64) for f in features]))
        threshold = np.where(leaf, 0.0, np.concatenate([np.asarray(t, dtype=np.float64) for t in thresholds]))
        left = np.concatenate([np.asarray(lt, dtype=np.int64) + off for lt, off in zip(lefts, offsets, strict=True)])
        right = np.concatenate([np.asarray(r, dtype=np.int64) + off for r, off in zip(rights, offsets, strict=True)])
        self_index = np.concatenate(own) if own else np.zeros(0, np.int64)
        left, right = np.where(leaf, self_index, left), np.where(leaf, self_index, right)
        missing_left = np.concatenate([np.asarray(m, dtype=bool) for m in missing_left])
        # Indexed by the doubled id 2n (and 2n + 1: the same node): one gather per array and step.
        self.feature = np.repeat(feature.astype(np.intp), 2)
        self.threshold = np.repeat(threshold, 2)
        self.missing_right = np.repeat(~np.where(leaf, True, missing_left), 2)
        self.children = np.empty(2 * len(leaf), np.intp)
        self.children[0::2], self.children[1::2] = 2 * left, 2 * right
        self.roots = (2 * offsets).astype(np.intp)
        depth_of = np.asarray(depths, dtype=np.int64)
        self.depth = int(depth_of.max()) if len(depth_of) else 0
        self.order = np.argsort(-depth_of, kind="stable")  # deepest first
        self.restore = np.argsort(self.order)
        ordered = depth_of[self.order]
        #: Trees still walking at each level (a prefix of the depth-sorted order).
        self.active = [int((ordered > level).sum()) for level in range(self.depth)]

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf index of each row (axis 0) in each tree (axis 1)."""
        rows, trees = X.shape[0], len(self.roots)
        step = max(1, CHUNK_ELEMENTS // max(1, trees))
        walk = self._walk_flat if rows < SMALL_ROWS else self._walk_sorted
        if rows <= step:
            return walk(X)
        return np.concatenate([walk(X[start : start + step]) for start in range(0, rows, step)])

    def _step(self, flat: np.ndarray, base: np.ndarray, node: np.ndarray, has_nan: bool) -> np.ndarray:
        x = flat.take(base + self.feature.take(node))
        right = x > self.threshold.take(node)
        if has_nan:
            right |= np.isnan(x) & self.missing_right.take(node)
        return self.children.take(node + right)

    def _walk_flat(self, X: np.ndarray) -> np.ndarray:
        rows, width = X.shape
        flat = np.ascontiguousarray(X).reshape(-1)
        base = (np.arange(rows, dtype=np.int64) * width)[:, None]
        node = np.broadcast_to(self.roots, (rows, len(self.roots))).copy()
        has_nan = bool(np.isnan(flat).any())
        for _ in range(self.depth):
            node = self._step(flat, base, node, has_nan)
        return node // 2

    def _walk_sorted(self, X: np.ndarray) -> np.ndarray:
        rows, width = X.shape
        flat = np.ascontiguousarray(X).reshape(-1)
        base = np.arange(rows, dtype=np.int64) * width
        node = np.repeat(self.roots[self.order][:, None], rows, axis=1)  # (trees, rows), deepest first
        has_nan = bool(np.isnan(flat).any())
        for active in self.active:
            node[:active] = self._step(flat, base, node[:active], has_nan)
        return (node // 2)[self.restore].T
