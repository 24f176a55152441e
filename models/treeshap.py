"""Exact path-dependent TreeSHAP for a LightGBM booster, computed once per decision pattern.

Why: LightGBM's ``pred_contrib`` and ``shap.TreeExplainer`` run the TreeSHAP recursion (Lundberg et al.
2018, Algorithm 2) for every row and every tree, at 20-50x the cost of ``Booster.predict``. Scoring every
entity with reasons every month should cost about what predicting them costs.

How: within one tree, a row's SHAP values depend on the row only through the direction it takes at each
internal node (its *decision pattern*): the recursion reads the features only to choose the "hot" child.
So, per tree,

1. each feature value is first mapped to its bin among all thresholds the ensemble uses for that feature,
   and a row's pattern in a tree is the OR of one precomputed bit mask per feature the tree uses (a few
   table look-ups per tree, cheaper than walking it);
2. the TreeSHAP recursion runs once per distinct pattern; results are cached across batches, so a pattern
   is explained once for the life of the scorer;
3. each row adds its patterns' values to its contributions.

Distinct patterns number in the hundreds or thousands per tree, not millions, so the cost is that of steps
1 and 3, which is about that of ``predict``. The numbers equal ``pred_contrib``'s to floating-point
rounding: the recursion follows LightGBM's ``Tree::TreeSHAP`` (src/io/tree.cpp) step by step, the split
semantics follow ``Tree::NumericalDecision``/``CategoricalDecision`` (missing values included), and the
tests compare the two on every feature type.

Trees with more than ``MAX_INTERNAL_NODES`` internal nodes (``num_leaves`` above 16) would need pattern
maps too large to index directly: ``supports`` is then False and the caller uses ``pred_contrib``.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import lightgbm as lgb
import numba as nb
import numpy as np
import pandas as pd

MAX_INTERNAL_NODES = 15
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


class Nodes(NamedTuple):
    """Every internal node of the ensemble; node ``i`` of tree ``t`` is row ``node_offset[t] + i``.

    Children are LightGBM-encoded: ``>= 0`` an internal node of the same tree, ``< 0`` the leaf ``~child``.
    """

    node_offset: np.ndarray  # (T + 1,)
    leaf_offset: np.ndarray  # (T + 1,)
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    categorical: np.ndarray
    missing: np.ndarray  # 0 None, 1 Zero, 2 NaN
    default_left: np.ndarray
    count: np.ndarray
    cat_offset: np.ndarray  # node i's left categories: cats[cat_offset[i]:cat_offset[i + 1]]
    cats: np.ndarray
    leaf_value: np.ndarray
    leaf_count: np.ndarray
    depth: np.ndarray  # max depth per tree


def flatten(booster: lgb.Booster) -> tuple[Nodes, float, int]:
    """The booster's trees as ``Nodes``, its SHAP base value and its number of features."""
    dump = booster.dump_model()
    keys = ("left", "right", "feature", "threshold", "categorical", "missing", "default_left", "count")
    nodes: dict[str, list] = {k: [] for k in keys}
    cat_offset, cats, leaf_value, leaf_count, depth = [0], [], [], [], []
    node_offset, leaf_offset = [0], [0]
    expected = 0.0
    for tree in dump["tree_info"]:
        n_internal = tree["num_leaves"] - 1
        base = len(nodes["left"])
        for values in nodes.values():
            values.extend([0] * n_internal)
        leaves = [0.0] * tree["num_leaves"]
        counts = [0.0] * tree["num_leaves"]
        node_cats: dict[int, list[int]] = {}
        max_depth = 0
        stack = [(tree["tree_structure"], 0)]
        while stack:
            node, d = stack.pop()
            max_depth = max(max_depth, d)
            if "split_index" not in node:
                index = node.get("leaf_index", 0)
                leaves[index] = float(node["leaf_value"])
                counts[index] = float(node.get("leaf_count", 0))
                continue
            i = base + node["split_index"]
            for side in ("left", "right"):
                child = node[f"{side}_child"]
                nodes[side][i] = child["split_index"] if "split_index" in child else ~child.get("leaf_index", 0)
                stack.append((child, d + 1))
            nodes["feature"][i] = node["split_feature"]
            nodes["categorical"][i] = node["decision_type"] == "=="
            nodes["missing"][i] = _MISSING[node["missing_type"]]
            nodes["default_left"][i] = bool(node["default_left"])
            nodes["count"][i] = float(node["internal_count"])
            if nodes["categorical"][i]:
                node_cats[i] = [int(c) for c in str(node["threshold"]).split("||")]
                nodes["threshold"][i] = 0.0
            else:
                nodes["threshold"][i] = float(node["threshold"])
        for i in range(base, base + n_internal):
            cats.extend(node_cats.get(i, []))
            cat_offset.append(len(cats))
        if n_internal == 0:
            expected += leaves[0]
        else:
            total = nodes["count"][base]
            expected += sum(c / total * v for c, v in zip(counts, leaves, strict=True))
        leaf_value.extend(leaves)
        leaf_count.extend(counts)
        depth.append(max_depth)
        node_offset.append(len(nodes["left"]))
        leaf_offset.append(len(leaf_value))
    arrays = Nodes(
        node_offset=np.asarray(node_offset, dtype=np.int64),
        leaf_offset=np.asarray(leaf_offset, dtype=np.int64),
        left=np.asarray(nodes["left"], dtype=np.int64),
        right=np.asarray(nodes["right"], dtype=np.int64),
        feature=np.asarray(nodes["feature"], dtype=np.int64),
        threshold=np.asarray(nodes["threshold"], dtype=np.float64),
        categorical=np.asarray(nodes["categorical"], dtype=np.bool_),
        missing=np.asarray(nodes["missing"], dtype=np.int8),
        default_left=np.asarray(nodes["default_left"], dtype=np.bool_),
        count=np.asarray(nodes["count"], dtype=np.float64),
        cat_offset=np.asarray(cat_offset, dtype=np.int64),
        cats=np.asarray(cats, dtype=np.int64),
        leaf_value=np.asarray(leaf_value, dtype=np.float64),
        leaf_count=np.asarray(leaf_count, dtype=np.float64),
        depth=np.asarray(depth, dtype=np.int64),
    )
    return arrays, float(expected), len(dump["feature_names"])


def numeric_matrix(matrix: pd.DataFrame, booster: lgb.Booster) -> np.ndarray:
    """The float64 array LightGBM itself predicts on: categorical columns become their codes in the
    categories the booster was trained with (unknown or missing -> NaN), everything else float64."""
    out = np.empty(matrix.shape, dtype=np.float64)
    categories = iter(booster.pandas_categorical or [])
    for j, name in enumerate(matrix.columns):
        column = matrix[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = pd.Categorical(column.astype(object), categories=next(categories)).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _goes_left(x: float, node: int, t: Nodes) -> bool:
    """LightGBM's split decision at global node ``node`` for feature value ``x`` (tree.h)."""
    if t.categorical[node]:
        if np.isnan(x) or int(x) < 0:
            return False
        return int(x) in t.cats[t.cat_offset[node] : t.cat_offset[node + 1]]
    missing = t.missing[node]
    if np.isnan(x) and missing != 2:
        x = 0.0
    if (missing == 1 and abs(x) <= _ZERO_THRESHOLD) or (missing == 2 and np.isnan(x)):
        return bool(t.default_left[node])
    return bool(x <= t.threshold[node])


class _Bins(NamedTuple):
    """Per feature, the cut points that make every split on it constant within a bin."""

    edges: list[np.ndarray | None]  # numeric: sorted cut points; categorical: None
    n_categories: list[int]  # categorical: codes 0..K-1 are their own bins, everything else bin K


def _bins(t: Nodes, n_features: int) -> _Bins:
    edges: list[np.ndarray | None] = []
    n_categories: list[int] = []
    for f in range(n_features):
        at = np.flatnonzero(t.feature == f)
        if at.size and t.categorical[at].all():
            top = max((int(c) for i in at for c in t.cats[t.cat_offset[i] : t.cat_offset[i + 1]]), default=-1)
            edges.append(None)
            n_categories.append(top + 1)
            continue
        if at.size and t.categorical[at].any():
            raise ValueError(f"feature {f} is split both as categorical and as numerical")
        cuts = set(t.threshold[at].tolist())
        if (t.missing[at] == 1).any():  # "zero is missing": |x| <= kZeroThreshold is its own bin
            cuts |= {float(np.nextafter(-_ZERO_THRESHOLD, -np.inf)), _ZERO_THRESHOLD}
        edges.append(np.asarray(sorted(cuts), dtype=np.float64))
        n_categories.append(0)
    return _Bins(edges, n_categories)


def _bin_representatives(edges: np.ndarray | None, n_categories: int) -> np.ndarray:
    """One feature value inside each bin (bin order as ``_bin_matrix``; the last bin is NaN)."""
    if edges is None:
        return np.r_[np.arange(n_categories, dtype=np.float64), np.nan]
    above = np.nextafter(edges[-1], np.inf) if edges.size else 0.0
    return np.r_[edges, above, np.nan]


class _FlatBins(NamedTuple):
    """``_Bins`` as flat arrays for ``_bin_matrix``: every feature's edges one after another."""

    edges: np.ndarray  # float64, the numeric features' cut points, feature by feature
    offset: np.ndarray  # int64 (n_features + 1): feature f's edges are edges[offset[f]:offset[f + 1]]
    n_categories: np.ndarray  # int64: a categorical feature's K, -1 for a numeric one


def _flat_bins(bins: _Bins) -> _FlatBins:
    sizes = [0 if e is None else e.size for e in bins.edges]
    edges = [e for e in bins.edges if e is not None and e.size]
    return _FlatBins(
        np.concatenate(edges) if edges else np.zeros(0),
        np.r_[0, np.cumsum(sizes)].astype(np.int64),
        np.array([k if e is None else -1 for e, k in zip(*bins, strict=True)], dtype=np.int64),
    )


@nb.njit(cache=True)
def _bin_matrix(x, edges, offset, n_categories, out):
    """The bin of every feature of every row into ``out``, in one pass without temporaries (one what-if row
    took 0.25 ms feature by feature in numpy). A numeric value's bin is the number of cut points below it
    (x <= edges[k] <=> that number <= k, so the bin decides every split on the feature exactly), NaN the bin
    after the last; a categorical code 0..K-1 is its own bin, anything else K."""
    for i in range(x.shape[0]):
        for f in range(x.shape[1]):
            v = x[i, f]
            k = n_categories[f]
            if k >= 0:  # categorical: codes 0..K-1 are their own bins, everything else (NaN included) K
                out[i, f] = np.int32(v) if (v == v and v >= 0 and v < k) else k
                continue
            lo, hi = offset[f], offset[f + 1]
            if v != v:
                out[i, f] = hi - lo + 1
                continue
            a, b = lo, hi  # the number of edges < v (searchsorted, side "left")
            while a < b:
                mid = (a + b) // 2
                if edges[mid] < v:
                    a = mid + 1
                else:
                    b = mid
            out[i, f] = a - lo


# ---- kernels -------------------------------------------------------------------------------------------
# No recursion anywhere below: numba cannot reliably cache recursive functions, and compiling these on
# every start would cost seconds per process.

_BLOCK = 256  # rows per block: a block's rows and one tree's pattern table stay in cache together
# Below these sizes the kernels run on the calling thread: waking a parallel region's threads costs
# milliseconds on a busy machine, more than a few rows or patterns take (a what-if request is one row).
PARALLEL_MIN_ROWS = 4 * _BLOCK
PARALLEL_MIN_PATTERNS = 256


@nb.njit(cache=True)
def _accumulate_block(
    out,
    rows,
    lo,
    hi,
    bins,
    tree_pair_offset,
    pair_feature,
    pair_mask_offset,
    masks,
    position,
    position_offset,
    table,
    incomplete,
):
    """Add the per-tree SHAP values (looked up by decision pattern) of ``rows[lo:hi]`` into ``out``.

    A row whose pattern in some tree has not been explained yet is flagged in ``incomplete`` and the
    pattern's slot set to -2 (wanted); the caller explains those patterns and redoes the row.
    """
    n_trees = tree_pair_offset.shape[0] - 1
    for tree in range(n_trees):
        p0 = tree_pair_offset[tree]
        p1 = tree_pair_offset[tree + 1]
        base = position_offset[tree]
        for k in range(lo, hi):
            r = rows[k]
            code = 0
            for p in range(p0, p1):
                code |= masks[pair_mask_offset[p] + bins[r, pair_feature[p]]]
            at = position[base + code]
            if at < 0:
                position[base + code] = -2  # concurrent writers all write -2: benign
                incomplete[r] = True
                continue
            for j in range(p1 - p0):
                out[r, pair_feature[p0 + j]] += table[at + j]


@nb.njit(cache=True, parallel=True)
def _accumulate(
    out,
    rows,
    bins,
    tree_pair_offset,
    pair_feature,
    pair_mask_offset,
    masks,
    position,
    position_offset,
    table,
    incomplete,
):
    """``_accumulate_block`` over blocks of ``_BLOCK`` rows, blocks in parallel."""
    n = rows.shape[0]
    for block in nb.prange((n + _BLOCK - 1) // _BLOCK):
        lo = block * _BLOCK
        _accumulate_block(
            out, rows, lo, min(n, lo + _BLOCK), bins, tree_pair_offset, pair_feature, pair_mask_offset, masks,
            position, position_offset, table, incomplete,
        )  # fmt: skip


@nb.njit(cache=True)
def _accumulate_serial(
    out,
    rows,
    bins,
    tree_pair_offset,
    pair_feature,
    pair_mask_offset,
    masks,
    position,
    position_offset,
    table,
    incomplete,
):
    """``_accumulate`` on the calling thread: the same blocks and the same arithmetic per row (so the same
    bits), without starting a parallel region, which costs more than a few rows do."""
    n = rows.shape[0]
    for block in range((n + _BLOCK - 1) // _BLOCK):
        lo = block * _BLOCK
        _accumulate_block(
            out, rows, lo, min(n, lo + _BLOCK), bins, tree_pair_offset, pair_feature, pair_mask_offset, masks,
            position, position_offset, table, incomplete,
        )  # fmt: skip


@nb.njit(cache=True)
def _extend(pf, pz, po, pw, s, depth, zero, one, feature):
    pf[s + depth] = feature
    pz[s + depth] = zero
    po[s + depth] = one
    pw[s + depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        pw[s + i + 1] += one * pw[s + i] * (i + 1) / (depth + 1)
        pw[s + i] = zero * pw[s + i] * (depth - i) / (depth + 1)


@nb.njit(cache=True)
def _unwind(pf, pz, po, pw, s, depth, index):
    one = po[s + index]
    zero = pz[s + index]
    next_one = pw[s + depth]
    for i in range(depth - 1, -1, -1):
        if one != 0:
            tmp = pw[s + i]
            pw[s + i] = next_one * (depth + 1) / ((i + 1) * one)
            next_one = tmp - pw[s + i] * zero * (depth - i) / (depth + 1)
        else:
            pw[s + i] = (pw[s + i] * (depth + 1)) / (zero * (depth - i))
    for i in range(index, depth):
        pf[s + i] = pf[s + i + 1]
        pz[s + i] = pz[s + i + 1]
        po[s + i] = po[s + i + 1]


@nb.njit(cache=True)
def _unwound_sum(pz, po, pw, s, depth, index):
    one = po[s + index]
    zero = pz[s + index]
    next_one = pw[s + depth]
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one != 0:
            tmp = next_one * (depth + 1) / ((i + 1) * one)
            total += tmp
            next_one = pw[s + i] - tmp * zero * ((depth - i) / (depth + 1))
        else:
            total += (pw[s + i] / zero) / ((depth - i) / (depth + 1))
    return total


@nb.njit(cache=True)
def _tree_shap(t, tree, code, phi):
    """TreeSHAP of one tree for decision pattern ``code``, added into ``phi``.

    LightGBM's recursive ``Tree::TreeSHAP`` with an explicit stack: a frame is (node, depth, parent
    segment, zero fraction, one fraction, feature); the cold child is pushed before the hot one so the
    visiting order, and therefore the floating-point summation order, is the recursion's.
    """
    base = t.node_offset[tree]
    leaf_base = t.leaf_offset[tree]
    max_depth = t.depth[tree]
    size = (max_depth + 2) * (max_depth + 3) // 2 + max_depth + 2
    pf = np.full(size, -1, dtype=np.int64)
    pz = np.zeros(size)
    po = np.zeros(size)
    pw = np.zeros(size)
    cap = 2 * max_depth + 4
    st_node = np.empty(cap, dtype=np.int64)
    st_depth = np.empty(cap, dtype=np.int64)
    st_parent = np.empty(cap, dtype=np.int64)
    st_zero = np.empty(cap)
    st_one = np.empty(cap)
    st_feature = np.empty(cap, dtype=np.int64)
    st_node[0], st_depth[0], st_parent[0], st_zero[0], st_one[0], st_feature[0] = 0, 0, 0, 1.0, 1.0, -1
    top = 1
    while top > 0:
        top -= 1
        node, depth, parent_s = st_node[top], st_depth[top], st_parent[top]
        s = parent_s + depth
        for i in range(depth):
            pf[s + i] = pf[parent_s + i]
            pz[s + i] = pz[parent_s + i]
            po[s + i] = po[parent_s + i]
            pw[s + i] = pw[parent_s + i]
        _extend(pf, pz, po, pw, s, depth, st_zero[top], st_one[top], st_feature[top])
        if node < 0:
            value = t.leaf_value[leaf_base + ~node]
            for i in range(1, depth + 1):
                w = _unwound_sum(pz, po, pw, s, depth, i)
                phi[pf[s + i]] += w * (po[s + i] - pz[s + i]) * value
            continue
        g = base + node
        if (code >> node) & 1:
            hot, cold = t.left[g], t.right[g]
        else:
            hot, cold = t.right[g], t.left[g]
        cover = t.count[g]
        hot_cover = t.leaf_count[leaf_base + ~hot] if hot < 0 else t.count[base + hot]
        cold_cover = t.leaf_count[leaf_base + ~cold] if cold < 0 else t.count[base + cold]
        incoming_zero = 1.0
        incoming_one = 1.0
        split = t.feature[g]
        index = 0
        while index <= depth:
            if pf[s + index] == split:
                break
            index += 1
        if index != depth + 1:
            incoming_zero = pz[s + index]
            incoming_one = po[s + index]
            _unwind(pf, pz, po, pw, s, depth, index)
            depth -= 1
        st_node[top], st_depth[top], st_parent[top] = cold, depth + 1, s
        st_zero[top], st_one[top], st_feature[top] = cold_cover / cover * incoming_zero, 0.0, split
        top += 1
        st_node[top], st_depth[top], st_parent[top] = hot, depth + 1, s
        st_zero[top], st_one[top], st_feature[top] = hot_cover / cover * incoming_zero, incoming_one, split
        top += 1


@nb.njit(cache=True)
def _explain_one(t, n_features, tree, code, out, at, tree_pair_offset, pair_feature):
    """TreeSHAP of pattern ``code`` in ``tree``, written (the tree's features only, in pair order) from
    ``out[at]``."""
    phi = np.zeros(n_features)
    _tree_shap(t, tree, code, phi)
    p0 = tree_pair_offset[tree]
    for j in range(tree_pair_offset[tree + 1] - p0):
        out[at + j] = phi[pair_feature[p0 + j]]


@nb.njit(cache=True, parallel=True)
def _explain_patterns(t, n_features, trees, codes, out_offset, tree_pair_offset, pair_feature):
    """TreeSHAP of pattern ``codes[k]`` in tree ``trees[k]``, written (tree's features only, in pair
    order) from ``out_offset[k]`` in the returned flat array."""
    out = np.zeros(out_offset[-1])
    for k in nb.prange(trees.shape[0]):
        _explain_one(t, n_features, trees[k], codes[k], out, out_offset[k], tree_pair_offset, pair_feature)
    return out


@nb.njit(cache=True)
def _explain_patterns_serial(t, n_features, trees, codes, out_offset, tree_pair_offset, pair_feature):
    """``_explain_patterns`` on the calling thread (for a few patterns)."""
    out = np.zeros(out_offset[-1])
    for k in range(trees.shape[0]):
        _explain_one(t, n_features, trees[k], codes[k], out, out_offset[k], tree_pair_offset, pair_feature)
    return out


@nb.njit(cache=True)
def _wanted(position):
    """The slots marked -2 (patterns to explain), in order: one pass, no temporary mask."""
    count = 0
    for i in range(position.shape[0]):
        if position[i] == -2:
            count += 1
    out = np.empty(count, dtype=np.int64)
    k = 0
    for i in range(position.shape[0]):
        if position[i] == -2:
            out[k] = i
            k += 1
    return out


class PatternTreeSHAP:
    """Exact TreeSHAP of ``booster`` (see the module docstring); ``contributions`` mirrors ``pred_contrib``.

    Parameters
    ----------
    booster : lightgbm.Booster
    """

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self._lock = threading.Lock()

    def _prepare(self) -> None:
        if hasattr(self, "nodes_"):
            return
        nodes, expected, n_features = flatten(self.booster)
        self.n_features_, self.expected_value_ = n_features, expected
        n_internal = np.diff(nodes.node_offset)
        self.max_internal_nodes_ = int(n_internal.max()) if n_internal.size else 0
        self.bins_ = _bins(nodes, n_features)
        self.flat_bins_ = _flat_bins(self.bins_)
        # (tree, feature) pairs, each with the bit mask of every bin: which of the tree's nodes on that
        # feature send a value of the bin to the left.
        pair_offset, pair_feature, mask_offset, masks = [0], [], [], []
        representatives = [_bin_representatives(e, k) for e, k in zip(*self.bins_, strict=True)]
        for tree in range(len(n_internal)):
            base = int(nodes.node_offset[tree])
            used = nodes.feature[base : base + int(n_internal[tree])]
            for f in np.unique(used):
                bits = np.zeros(len(representatives[f]), dtype=np.int64)
                for i in np.flatnonzero(used == f):
                    left = np.array([_goes_left(v, base + int(i), nodes) for v in representatives[f]])
                    bits |= left.astype(np.int64) << int(i)
                pair_feature.append(int(f))
                mask_offset.append(sum(len(m) for m in masks))
                masks.append(bits)
            pair_offset.append(len(pair_feature))
        self.tree_pair_offset_ = np.asarray(pair_offset, dtype=np.int64)
        self.pair_feature_ = np.asarray(pair_feature, dtype=np.int64)
        self.pair_mask_offset_ = np.asarray(mask_offset, dtype=np.int64)
        self.masks_ = np.concatenate(masks) if masks else np.zeros(0, dtype=np.int64)
        self.tree_width_ = np.diff(self.tree_pair_offset_)
        if self.max_internal_nodes_ <= MAX_INTERNAL_NODES:
            sizes = np.left_shift(1, n_internal).astype(np.int64)
            self.position_offset_ = np.r_[0, np.cumsum(sizes)].astype(np.int64)
            self.position_ = np.full(int(self.position_offset_[-1]), -1, dtype=np.int64)
            # The explained patterns' values, appended as they are found; grown by doubling so that many
            # small batches (a service answering one entity at a time) do not copy the table each time.
            self.table_ = np.zeros(1024)
            self.table_size_ = 0
        self.nodes_ = nodes

    @property
    def supports(self) -> bool:
        """Whether the trees are small enough for pattern tables (else use ``pred_contrib``)."""
        self._prepare()
        return self.max_internal_nodes_ <= MAX_INTERNAL_NODES

    @property
    def patterns_explained(self) -> int:
        """How many (tree, pattern) SHAP tables are cached."""
        self._prepare()
        return int((self.position_ >= 0).sum()) if self.supports else 0

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_features + 1)``: SHAP values in log-odds and, last, the base value (as ``pred_contrib``).

        ``x`` is the float matrix of ``numeric_matrix``.
        """
        with self._lock:
            self._prepare()
            if not self.supports:
                raise ValueError(
                    f"trees must have at most {MAX_INTERNAL_NODES} internal nodes for pattern TreeSHAP; "
                    f"got {self.max_internal_nodes_}"
                )
            x = np.asarray(x, dtype=np.float64)
            if x.ndim != 2 or x.shape[1] != self.n_features_:
                raise ValueError(f"x must have shape (n, {self.n_features_}); got {x.shape}")
            out = np.zeros((x.shape[0], self.n_features_ + 1))
            out[:, -1] = self.expected_value_
            if x.shape[0] == 0 or len(self.pair_feature_) == 0:
                return out
            bins = np.empty(x.shape, dtype=np.int32)
            _bin_matrix(x, *self.flat_bins_, bins)
            rows = np.arange(x.shape[0], dtype=np.int64)
            incomplete = np.zeros(x.shape[0], dtype=np.bool_)
            args = (bins, self.tree_pair_offset_, self.pair_feature_, self.pair_mask_offset_, self.masks_)
            accumulate = _accumulate if x.shape[0] >= PARALLEL_MIN_ROWS else _accumulate_serial
            accumulate(out, rows, *args, self.position_, self.position_offset_, self.table_, incomplete)
            if incomplete.any():
                # Explain the patterns seen for the first time, then redo those rows from scratch so the
                # summation order (and so every bit of the result) does not depend on the cache.
                self._explain_wanted()
                redo = np.flatnonzero(incomplete)
                out[redo, :-1] = 0.0
                incomplete[:] = False
                accumulate = _accumulate if redo.size >= PARALLEL_MIN_ROWS else _accumulate_serial
                accumulate(out, redo, *args, self.position_, self.position_offset_, self.table_, incomplete)
            return out

    def _explain_wanted(self) -> None:
        wanted = _wanted(self.position_)
        trees = np.searchsorted(self.position_offset_, wanted, side="right") - 1
        patterns = wanted - self.position_offset_[trees]
        widths = self.tree_width_[trees]
        offsets = np.r_[0, np.cumsum(widths)].astype(np.int64)
        explain = _explain_patterns if wanted.size >= PARALLEL_MIN_PATTERNS else _explain_patterns_serial
        values = explain(
            self.nodes_,
            self.n_features_,
            trees.astype(np.int64),
            patterns.astype(np.int64),
            offsets,
            self.tree_pair_offset_,
            self.pair_feature_,
        )
        used = self.table_size_
        if used + values.size > self.table_.size:
            grown = np.zeros(max(2 * self.table_.size, used + values.size))
            grown[:used] = self.table_[:used]
            self.table_ = grown
        self.table_[used : used + values.size] = values
        self.table_size_ = used + values.size
        self.position_[wanted] = used + offsets[:-1]
