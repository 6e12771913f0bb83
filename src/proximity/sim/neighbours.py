"""Pairs of points within a radius by spatial hashing: O(points + pairs), no pair matrix.

Points are binned into square cells of side ``radius`` on a dense grid (counting sort), so each
point's neighbours are read from its own and the adjacent cells' slices, all at once. Where points are
sparse (a city's 40,000 walkers over 5 km² with a 2 m contact distance) :func:`close_pairs` grows its
cells to about four per point (:func:`cell_size`): any side of at least ``radius`` finds the same
pairs, and a grid of a million empty cells cost more than the pairs. The C searches (sim/_pairs.c, where
built) walk the same cells in the same order: the same pairs, distances and order as the numpy ones.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from proximity.arrays import stable_order
from proximity.sim.native import pairs as _native

__all__ = ["StaticGrid", "close_pairs", "cross_pairs"]

_COLUMNS = np.array([-1, 0, 1], np.int64)  # the x offsets of the 3 x 3 neighbourhood

Pairs = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]


def _empty() -> Pairs:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)


def _found(raw: tuple[bytearray, bytearray, bytearray]) -> Pairs:
    """The C searches' (i, j, distance) bytes as arrays (writable: bytearrays)."""
    return np.frombuffer(raw[0], np.int64), np.frombuffer(raw[1], np.int64), np.frombuffer(raw[2], np.float64)


def _low(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """The smallest x and y (column by column: numpy's min over axis 0 of an (n, 2) array is ~50x slower)."""
    return np.array([points[:, 0].min(), points[:, 1].min()])


def _high(points: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([points[:, 0].max(), points[:, 1].max()])


def cell_size(radius: float, points: int, low: NDArray[np.float64], high: NDArray[np.float64]) -> float:
    """A grid cell's side for ``points`` spread over the box low-high: ``radius``, or larger where
    that would give more than about four cells per point."""
    area = float(np.prod(np.maximum(high - low, 0.0)))
    return max(radius, 0.5 * (area / points) ** 0.5) if points else radius


def cell_order(flat: NDArray[np.int64], cells: int) -> NDArray[np.int64]:
    """The stable order sorting ``flat`` (cell numbers in [0, cells)) by 16-bit radix passes
    (:func:`proximity.arrays.stable_order`): ~4x faster than sorting int64 (a city step's 40,000
    walkers over 160,000 cells)."""
    out: NDArray[np.int64] = stable_order(flat, cells)
    return out


def _slices(
    first: NDArray[np.int64], count: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every element of the slices ``[first, first + count)`` in order, as (its slice, its position),
    the empty slices skipped first (a sparse grid's 3 x 3 neighbourhoods are mostly empty)."""
    full = np.flatnonzero(count)
    count = count[full]
    ends = np.cumsum(count)
    which = np.repeat(full, count)
    return which, np.arange(int(ends[-1]) if ends.size else 0, dtype=np.int64) + np.repeat(
        first[full] - (ends - count), count
    )


def _grid(
    b: NDArray[np.float64], origin: NDArray[np.float64], radius: float, shape: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Cells of b (padded by one), b's indices sorted by cell, and each cell's start in that order."""
    cells = np.floor((b - origin) / radius).astype(np.int64) + 1
    flat = cells[:, 0] * shape[1] + cells[:, 1]
    order = cell_order(flat, shape[0] * shape[1])
    counts = np.bincount(flat, minlength=shape[0] * shape[1])
    starts = np.concatenate(([0], np.cumsum(counts)))
    return order, starts, cells


class _Binned:
    """Points binned into square cells of side ``radius`` (:func:`_grid`), with their coordinates in
    cell order, so a probe reads each candidate's coordinates from contiguous slices."""

    def __init__(
        self, points: NDArray[np.float64], origin: NDArray[np.float64], radius: float, shape: tuple[int, int]
    ) -> None:
        self.origin, self.radius, self.shape = origin, radius, shape
        self.order, self.starts, _ = _grid(points, origin, radius, shape)
        self.x, self.y = points[:, 0][self.order], points[:, 1][self.order]

    def near(self, a: NDArray[np.float64]) -> Pairs:
        """Every (i, j) with |a[i] - points[j]| <= radius, and that distance: the candidates are the
        binned points in the 3 x 3 cells around each point of ``a``; cells are numbered
        x * shape[1] + y, so each column of three is one contiguous slice of ``order``. In C where it is
        built, else :meth:`near_numpy` (the same pairs in the same order)."""
        if _native is None:
            return self.near_numpy(a)
        raw = _native.near(
            np.ascontiguousarray(a, np.float64),
            float(self.origin[0]),
            float(self.origin[1]),
            float(self.radius),
            float(self.radius * self.radius),
            self.shape[1],
            np.ascontiguousarray(self.starts, np.int64),
            np.ascontiguousarray(self.order, np.int64),
            self.x,
            self.y,
        )
        return _found(raw)

    def near_numpy(self, a: NDArray[np.float64]) -> Pairs:
        """:meth:`near` in numpy."""
        cell_a = np.floor((a - self.origin) / self.radius).astype(np.int64) + 1
        column = (cell_a[:, 0, None] + _COLUMNS[None, :]) * self.shape[1] + cell_a[:, 1, None]
        lo = self.starts[column - 1].ravel()
        which, positions = _slices(lo, self.starts[column + 2].ravel() - lo)
        ia = which // _COLUMNS.size
        dx = a[:, 0][ia] - self.x[positions]
        dy = a[:, 1][ia] - self.y[positions]
        d2 = dx * dx + dy * dy
        keep = d2 <= self.radius * self.radius
        return ia[keep], self.order[positions[keep]], np.sqrt(d2[keep])


class StaticGrid:
    """Points that never move (seated, standing), binned once: each step only the movers are searched
    against them. ``low``/``high`` bound every point ever queried (the venue)."""

    def __init__(
        self,
        points: NDArray[np.float64],
        radius: float,
        low: NDArray[np.float64],
        high: NDArray[np.float64],
        ids: NDArray[np.int64] | None = None,
    ) -> None:
        """``ids``: each point's agent (for :meth:`movers`; default its index)."""
        self.points = points
        self.radius = radius
        self.ids = np.arange(len(points), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        self._agents: NDArray[np.int64] | None = None  # the points' agents in cell order (the C movers)
        self.origin = np.minimum(low, _low(points)) if len(points) else low
        top = np.maximum(high, _high(points)) if len(points) else high
        span = np.floor((top - self.origin) / radius).astype(np.int64) + 3
        self.shape = (int(span[0]), int(span[1]))
        self._binned = _Binned(points, self.origin, radius, self.shape)

    def query(self, a: NDArray[np.float64]) -> Pairs:
        """Every (i, j) with |a[i] - points[j]| <= radius, and that distance."""
        if len(a) == 0 or len(self.points) == 0:
            return _empty()
        return self._binned.near(a)

    def movers(
        self,
        a: NDArray[np.float64],
        ids: NDArray[np.int64],
        present: NDArray[np.bool_],
        owned: NDArray[np.bool_],
    ) -> Pairs:
        """A city step's close pairs of its movers (positions ``a`` of agents ``ids``) as (lower agent,
        higher agent, distance), kept where the lower agent is ``owned``: with the grid's points whose
        agent is ``present`` (in :meth:`query`'s order), then among themselves (in :func:`close_pairs`'
        order). One C call where built (no arrays between the searches), else :meth:`movers_numpy`."""
        if _native is None:
            return self.movers_numpy(a, ids, present, owned)
        if len(a) == 0:
            return _empty()
        if self._agents is None:
            self._agents = self.ids[self._binned.order]
        b = self._binned
        low, _, cell = _cells(a, self.radius, None)
        raw = _native.movers(
            np.ascontiguousarray(a, np.float64),
            np.ascontiguousarray(ids, np.int64),
            float(b.origin[0]),
            float(b.origin[1]),
            float(b.radius),
            float(b.radius * b.radius),
            b.shape[1],
            np.ascontiguousarray(b.starts, np.int64),
            self._agents,
            b.x,
            b.y,
            np.ascontiguousarray(present, np.bool_).view(np.uint8),
            np.ascontiguousarray(owned, np.bool_).view(np.uint8),
            float(low[0]),
            float(low[1]),
            float(cell),
        )
        return _found(raw)

    def movers_numpy(
        self,
        a: NDArray[np.float64],
        ids: NDArray[np.int64],
        present: NDArray[np.bool_],
        owned: NDArray[np.bool_],
    ) -> Pairs:
        """:meth:`movers` in numpy."""
        i, j, d = self._binned.near_numpy(a) if len(a) and len(self.points) else _empty()
        mover, other = ids[i], self.ids[j]
        low, high = np.minimum(mover, other), np.maximum(mover, other)
        here = present[other] & owned[low]
        mi, mj, md = close_pairs_numpy(a, self.radius)
        mi, mj = ids[mi], ids[mj]
        mi, mj = np.minimum(mi, mj), np.maximum(mi, mj)
        mine = owned[mi]
        return (
            np.concatenate((low[here], mi[mine])),
            np.concatenate((high[here], mj[mine])),
            np.concatenate((d[here], md[mine])),
        )


def cross_pairs(a: NDArray[np.float64], b: NDArray[np.float64], radius: float) -> Pairs:
    """Every (i, j) with |a[i] - b[j]| <= radius, and that distance; a and b are (n, 2) positions."""
    if len(a) == 0 or len(b) == 0:
        return _empty()
    both = np.concatenate((a, b))
    origin = _low(both)
    span = np.floor((_high(both) - origin) / radius).astype(np.int64) + 3
    return _Binned(b, origin, radius, (int(span[0]), int(span[1]))).near(a)


def _cells(
    points: NDArray[np.float64], radius: float, layer: NDArray[np.int64] | None
) -> tuple[NDArray[np.float64], int, float]:
    """:func:`close_pairs`' grid: its low corner, the layers and the cells' side."""
    x, y = points[:, 0], points[:, 1]
    low, high = np.array([x.min(), y.min()]), np.array([x.max(), y.max()])
    layers = 1 if layer is None else int(layer.max()) + 1
    return low, layers, cell_size(radius, -(-len(points) // layers), low, high)  # a layer's points share it


def close_pairs(points: NDArray[np.float64], radius: float, layer: NDArray[np.int64] | None = None) -> Pairs:
    """Every unordered pair i < j of ``points`` within ``radius``, with its distance; with ``layer``
    (an int >= 0 per point: the steps of a batch) only pairs within one layer.

    Works on the points sorted by cell (contiguous memory); in its own cell a point is paired only
    with the points after it, in four of its eight neighbour cells with all (each pair once). Cell
    row y = 0 is always empty (cells start at 1), so a slice running past a column's top is harmless;
    layers are laid side by side along x with an empty column between them (distances come from the
    points themselves, not from shifted copies). In C where it is built (the same pairs, distances and
    order), else :func:`close_pairs_numpy`.
    """
    if _native is None or len(points) < 2:
        return close_pairs_numpy(points, radius, layer)
    low, layers, cell = _cells(points, radius, layer)
    raw = _native.close_pairs(
        np.ascontiguousarray(points, np.float64),
        float(low[0]),
        float(low[1]),
        float(cell),
        float(radius * radius),
        b"" if layer is None else np.ascontiguousarray(layer, np.int64),
        layers,
    )
    return _found(raw)


def close_pairs_numpy(
    points: NDArray[np.float64], radius: float, layer: NDArray[np.int64] | None = None
) -> Pairs:
    """:func:`close_pairs` in numpy."""
    n = len(points)
    if n < 2:
        return _empty()
    x, y = points[:, 0], points[:, 1]
    low, layers, cell = _cells(points, radius, layer)
    cx = np.floor((x - low[0]) / cell).astype(np.int64) + 1
    cy = np.floor((y - low[1]) / cell).astype(np.int64) + 1
    columns, rows = int(cx.max()) + 2, int(cy.max()) + 2
    if layer is not None:
        cx += layer * columns
        columns *= layers
    flat = cx * rows + cy
    order = cell_order(flat, columns * rows)
    fs = flat[order]
    xs, ys = x[order], y[order]
    starts = np.zeros(columns * rows + 1, np.int64)
    np.cumsum(np.bincount(fs, minlength=columns * rows), out=starts[1:])
    rank = np.arange(n, dtype=np.int64)
    # two contiguous slices per point: the rest of its own cell and the next cell up (same column),
    # and the three cells of the next column; the other four neighbours find this point themselves
    lo = np.stack((rank + 1, starts[fs + rows - 1]), axis=1)
    hi = np.stack((starts[fs + 2], starts[fs + rows + 2]), axis=1)
    which, ib = _slices(lo.ravel(), (hi - lo).ravel())
    ia = which // 2
    dx = xs[ia] - xs[ib]
    dy = ys[ia] - ys[ib]
    d2 = dx * dx + dy * dy
    keep = d2 <= radius * radius
    i, j = order[ia[keep]], order[ib[keep]]
    return np.minimum(i, j), np.maximum(i, j), np.sqrt(d2[keep])
