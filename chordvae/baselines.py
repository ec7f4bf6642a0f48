"""Baselines a VAE must beat, fitted on the training split; all scores in nats per example."""
from __future__ import annotations

import math

import numpy as np
import torch

from .batch import Masked
from .codes import binary_codes


class IndependentBernoulli:
    """Each dimension its own coin, with add-one (Laplace) smoothing: p_d = (n_d + 1) / (N + 2)."""

    def fit(self, x: torch.Tensor) -> "IndependentBernoulli":
        flat = x.flatten(1).double()
        self.p = (flat.sum(0) + 1) / (len(flat) + 2)
        return self

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(x), shape ``(N,)`` (cross-entropy for values between 0 and 1)."""
        flat = x.flatten(1).double()
        return -(flat * self.p.log() + (1 - flat) * (1 - self.p).log()).sum(1)


#: smoothing values cross-validation chooses from: 10^-4 to 10 in quarter decades
ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-4, 1.01, 0.25))


class EmpiricalSets:
    """The smoothed empirical distribution over all 2^D binary vectors (12 pitch classes: 4,096 sets):
    p(s) = (count(s) + alpha) / (N + alpha 2^D), the practical floor for data whose sets repeat,
    as chords do; unseen sets still get a little mass.

    ``alpha=None`` (default) chooses alpha from :data:`ALPHAS` by ``folds``-fold
    cross-validation on the training data, folds made of whole ``groups`` (pieces) when given,
    so the floor is as good as this family gets without seeing the test data. After
    :meth:`fit`, ``alpha`` is the value used.
    """

    def __init__(self, alpha: float | None = None, folds: int = 5):
        self.alpha = alpha
        self.folds = folds

    def fit(self, x: torch.Tensor, groups: torch.Tensor | np.ndarray | None = None) -> "EmpiricalSets":
        """Count the training vectors ``x`` ``(N, D)``; ``groups`` ``(N,)`` (e.g. piece indices)
        keep each group within one cross-validation fold."""
        codes = _codes(x)
        self.n, self.dims = len(codes), x.flatten(1).shape[1]
        if self.alpha is None:
            self.alpha = cross_validated_alpha(codes, self.dims, groups, self.folds)
        values, counts = np.unique(codes, return_counts=True)
        self.counts = dict(zip(values.tolist(), counts.tolist()))
        return self

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        counts = np.array([self.counts.get(c, 0) for c in _codes(x).tolist()], dtype=np.float64)
        log_total = math.log(self.n + self.alpha * 2.0 ** self.dims)
        return torch.from_numpy(log_total - np.log(counts + self.alpha))


def cross_validated_alpha(codes: np.ndarray, dims: int, groups: torch.Tensor | np.ndarray | None = None,
                          folds: int = 5, alphas: tuple[float, ...] = ALPHAS) -> float:
    """The alpha of ``alphas`` with the lowest total held-out NLL of the smoothed empirical
    distribution over ``folds`` folds of ``codes`` (integer-coded vectors of ``dims`` bits).

    Folds are made of whole ``groups`` (shuffled with a fixed seed); without groups, or with
    fewer than two, each example is its own group.
    """
    fold = fold_assignment(len(codes), groups, folds)
    a = np.array(alphas)[:, None]
    total = np.zeros(len(alphas))
    for k in np.unique(fold):
        train, held_out = codes[fold != k], codes[fold == k]
        values, counts = np.unique(train, return_counts=True)
        position = np.clip(np.searchsorted(values, held_out), 0, max(len(values) - 1, 0))
        seen = np.where(values[position] == held_out, counts[position], 0) if len(values) else 0 * held_out
        total += (np.log(len(train) + a * 2.0 ** dims) - np.log(seen[None, :] + a)).sum(1)
    return float(alphas[int(np.argmin(total))])


def fold_assignment(n: int, groups: torch.Tensor | np.ndarray | None = None, folds: int = 5) -> np.ndarray:
    """The cross-validation fold of each of ``n`` examples, int ``(n,)`` in ``range(folds)``: whole
    ``groups`` ``(n,)`` (e.g. pieces) go to one fold, dealt round-robin in an order shuffled with
    a fixed seed; without groups, or with fewer than two, each example is its own group."""
    groups = np.arange(n) if groups is None else np.asarray(groups)
    distinct = np.unique(groups)
    if len(distinct) < 2:
        groups, distinct = np.arange(n), np.arange(n)
    if len(distinct) < 2:
        raise ValueError("cross-validation needs at least two training examples")
    fold_of = dict(zip(np.random.default_rng(0).permutation(distinct).tolist(),
                       np.arange(len(distinct)) % min(folds, len(distinct))))
    return np.array([fold_of[g] for g in groups.tolist()])


def _codes(x: torch.Tensor) -> np.ndarray:
    """Binary rows -> integers (at most 62 dimensions)."""
    return binary_codes(x.flatten(1).numpy())


#: discounts cross-validation chooses from for each order of :class:`FrameNGram` (0 < d <= 1)
DISCOUNTS = tuple(round(d, 2) for d in np.arange(0.05, 1.0001, 0.05))
#: the highest order :class:`FrameNGram` tries
MAX_ORDER = 4


class FrameNGram:
    """An n-gram model over the frames of sequences (each distinct binary frame a token), a proper
    distribution over all 2^D frames in every context, in nats per scored frame.

    Interpolated absolute discounting (Ney, Essen and Kneser 1994) with one discount ``d_k`` per
    order k, down to the independent-Bernoulli distribution of the frame (:class:`IndependentBernoulli`
    fitted on the same training frames) as order 0::

        p_k(w | h) = max(c(h w) - d_k, 0) / c(h) + d_k u(h) / c(h) p_(k-1)(w | h')   when c(h) > 0
        p_k(w | h) = p_(k-1)(w | h')                                                  when c(h) = 0

    with h the k - 1 frames before w, h' its k - 2 latest, c counts in the training frames and
    u(h) the number of distinct frames seen after h. At order 1 (h empty) the escape mass
    d_1 V / N (V distinct frames in N) goes to the Bernoulli distribution, so a frame never seen
    in training still has probability. Each level sums to 1 over all frames when d_k <= 1.

    History: a scored frame's n - 1 predecessors in its window row, as the sequence decoder reads
    them: the window's context frames (the piece's real previous beats) and any unscored positions
    inside the row; positions before the row are the all-zero frame (which also marks a piece's
    start, as the windows pad with zeros there). Only the frames a window's mask marks are scored
    and counted, so training windows should tile their pieces (every frame once).

    ``order=None`` (default) chooses by ``folds``-fold cross-validation over whole ``groups`` of the
    training windows (pieces): greedily, the discount d_k of :data:`DISCOUNTS` that gives the
    order-k model (lower discounts fixed) the lowest held-out NLL, for k = 1..``max_order``; then
    the order with the lowest. Given ``order`` and ``discounts`` nothing is chosen. After
    :meth:`fit`, ``order``, ``discounts`` and ``cv`` (order -> {discount, nll per frame}) say
    what was used.
    """

    def __init__(self, order: int | None = None, discounts: tuple[float, ...] | None = None,
                 max_order: int = MAX_ORDER, folds: int = 5):
        if (order is None) != (discounts is None) or (order is not None and len(discounts) != order):
            raise ValueError("give both an order and its discounts (one per order), or neither")
        if discounts is not None and not all(0 < d <= 1 for d in discounts):
            raise ValueError("discounts must be in (0, 1]")
        self.order, self.discounts = order, discounts
        self.max_order, self.folds = order or max_order, folds
        self.cv: dict[int, dict[str, float]] = {}

    def fit(self, x: Masked, groups: torch.Tensor | np.ndarray | None = None) -> "FrameNGram":
        """Count the scored frames of windows ``x`` (``(N, L, D)``, mask ``(N, L)``); ``groups``
        ``(N,)`` keep each group's windows within one cross-validation fold."""
        packed = _packed_rows(x.x)
        self._vocab = np.unique(np.concatenate([_row_keys(packed.reshape(-1, packed.shape[-1])),
                                                _row_keys(np.zeros((1, packed.shape[-1]), np.uint8))]))
        self._tokens = self._grams(packed, x.mask)
        self._bits = _unpack(self._vocab, x.x.shape[-1])                         # (V, D) each token's frame
        if self.order is None:
            window_fold = fold_assignment(len(x), groups, self.folds)
            self._choose(window_fold[x.mask.nonzero()[:, 0].numpy()])
        return self

    def nll(self, x: Masked) -> torch.Tensor:
        """-log p(frame | its history) of every scored frame of ``x``, float64 ``(F,)`` in the
        order of ``x.x[x.mask]``."""
        query = self._grams(_packed_rows(x.x), x.mask)
        p = np.exp(-self._bernoulli(self._tokens[:, -1]).nll(x.x[x.mask]).numpy())
        stats = _level_stats(self._tokens[:, -self.order:], query[:, -self.order:])
        for (cg, ch, uh), d in zip(stats, self.discounts):
            p = _interpolate(cg, ch, uh, d, p)
        return torch.from_numpy(-np.log(p))

    def _grams(self, packed: np.ndarray, mask: torch.Tensor) -> np.ndarray:
        """Token ids ``(F, max_order)`` of every scored frame (last column) after its history
        (oldest first); a frame not in the training vocabulary gets id V."""
        n, length, _ = packed.shape
        keys = _row_keys(packed.reshape(n * length, -1))
        ids = np.searchsorted(self._vocab, keys)
        ids = np.where((ids < len(self._vocab)) & (self._vocab[np.minimum(ids, len(self._vocab) - 1)] == keys),
                       ids, len(self._vocab)).reshape(n, length)
        zero = int(np.searchsorted(self._vocab, _row_keys(np.zeros((1, packed.shape[-1]), np.uint8))[0]))
        k = self.max_order
        ids = np.concatenate([np.full((n, k - 1), zero, dtype=ids.dtype), ids], 1)
        row, t = mask.nonzero().numpy().T
        return ids[row[:, None], t[:, None] + np.arange(k)[None, :]]

    def _bernoulli(self, frames: np.ndarray) -> IndependentBernoulli:
        """:class:`IndependentBernoulli` fitted on the frames of tokens ``frames`` ``(F,)``, from their counts."""
        counts = np.bincount(frames, minlength=len(self._vocab))
        bernoulli = IndependentBernoulli()
        bernoulli.p = torch.from_numpy((counts @ self._bits.astype(np.float64) + 1) / (counts.sum() + 2))
        return bernoulli

    def _choose(self, fold: np.ndarray) -> None:
        """Greedy cross-validation of the discounts and then of the order (see the class doc)."""
        levels, p, total = [], [], len(fold)
        for f in np.unique(fold):
            train, held = self._tokens[fold != f], self._tokens[fold == f]
            levels.append(_level_stats(train, held))
            frames = torch.from_numpy(self._bits[held[:, -1]])         # training frames: all in the vocabulary
            p.append(np.exp(-self._bernoulli(train[:, -1]).nll(frames).numpy()))
        grid = np.array(DISCOUNTS)[:, None]
        chosen: list[float] = []
        for k in range(self.max_order):
            scores = sum(-np.log(_interpolate(*levels[f][k], grid, p[f])).sum(1) for f in range(len(p)))
            best = int(np.argmin(scores))
            chosen.append(float(DISCOUNTS[best]))
            p = [_interpolate(*levels[f][k], chosen[-1], p[f]) for f in range(len(p))]
            self.cv[k + 1] = {"discount": chosen[-1], "nll": float(scores[best]) / total}
        self.order = min(self.cv, key=lambda order: self.cv[order]["nll"])
        self.discounts = tuple(chosen[:self.order])


def _interpolate(cg: np.ndarray, ch: np.ndarray, uh: np.ndarray, d: float | np.ndarray,
                 lower: np.ndarray) -> np.ndarray:
    """One level of interpolated absolute discounting: p_k from the counts of each query's gram
    ``cg``, history ``ch`` and the distinct frames after its history ``uh`` (all ``(M,)``), and
    p_(k-1) ``lower``; ``d`` a discount or a column ``(G, 1)`` of them -> ``(G, M)``."""
    seen = ch > 0
    c = np.maximum(ch, 1)
    return np.where(seen, np.maximum(cg - d, 0) / c + d * uh / c * lower, lower)


def _level_stats(train: np.ndarray, query: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each order k = 1..n of token grams ``train`` ``(F, n)`` and ``query`` ``(M, n)``
    (history oldest first, the frame last): per query, the training count of its k-gram, of its
    (k - 1)-frame history, and the number of distinct frames seen after that history."""
    both = np.concatenate([train, query])
    is_train = np.arange(len(both)) < len(train)
    history = np.zeros(len(both), dtype=np.int64)
    n, out = both.shape[1], []
    for k in range(1, n + 1):
        gram = _combine(history, both[:, -1])
        g_count = np.bincount(gram[is_train], minlength=gram.max() + 1)
        h_count = np.bincount(history[is_train], minlength=history.max() + 1)
        distinct, first = np.unique(gram[is_train], return_index=True)
        followers = np.bincount(history[is_train][first], minlength=history.max() + 1)
        q_gram, q_hist = gram[~is_train], history[~is_train]
        out.append((g_count[q_gram], h_count[q_hist], followers[q_hist]))
        if k < n:
            history = _combine(both[:, n - 1 - k], history)
    return out


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense int64 ids ``(M,)`` of the pairs ``(a, b)`` (each a non-negative int array ``(M,)``)."""
    return np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b, return_inverse=True)[1].reshape(-1)


def _packed_rows(x: torch.Tensor) -> np.ndarray:
    """Binary frames ``(..., D)`` (>= 0.5 counts as set) -> bytes ``(..., ceil(D / 8))``."""
    return np.packbits(x.numpy() >= 0.5, axis=-1)


def _row_keys(packed: np.ndarray) -> np.ndarray:
    """Packed rows ``(M, B)`` -> sortable keys ``(M,)``: uint64 for B <= 8, else raw bytes."""
    rows = np.ascontiguousarray(packed)
    if rows.shape[1] <= 8:
        return np.pad(rows, ((0, 0), (0, 8 - rows.shape[1]))).view(">u8").ravel()
    return rows.view(np.dtype((np.void, rows.shape[1]))).ravel()


def _unpack(keys: np.ndarray, dims: int) -> np.ndarray:
    """Keys of :func:`_row_keys` -> binary frames float32 ``(M, dims)``."""
    raw = (keys.astype(">u8").view(np.uint8).reshape(len(keys), 8) if keys.dtype.kind == "u"
           else keys.view(np.uint8).reshape(len(keys), -1))
    return np.unpackbits(raw, axis=1)[:, :dims].astype(np.float32)
