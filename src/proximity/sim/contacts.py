"""The contact-level table: one row per pair of agents and UTC day (per meeting with ``forget``) that
came within the contact distance, plus every app-user pair an estimator flagged or notified without
coming that close (the false positives), column by column.

Columns: agent_a < agent_b, day (unix time of its UTC midnight; -1 for flagged-only rows), companions
(one walking group), true_contact, minutes_close (within the contact distance), min_distance_m and
mean_distance_m (over the close steps; NaN for flagged-only rows), and per estimator E:
``E_close_a`` / ``E_score_a`` (phone a's verdict of b: 1, 0, or -1 where a's phone did not hear b),
the same for b, and ``E_notified_a_at`` / ``E_notified_b_at`` (unix time the phone reported an
exposure to the other as an index case; NaN if never). Verdicts and notifications are per run (a pair
judged more than once: any close, best score), not split by day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from proximity.times import SECONDS_PER_DAY

__all__ = ["contact_table"]

Pair = tuple[int, int]


class Crowd(Protocol):
    """What the table reads of the run's world: its size and who walks together."""

    @property
    def n(self) -> int: ...
    def companions(self, i: int, j: int) -> bool: ...


class Judgements(Protocol):
    """What the table reads of the run's judge (sim/run.py), kept as a protocol so that this module
    does not import the run that imports it."""

    @property
    def estimators(self) -> Sequence[str]: ...
    @property
    def flagged(self) -> Mapping[str, set[Pair]]: ...
    @property
    def reported(self) -> Mapping[str, set[Pair]]: ...
    @property
    def verdicts(self) -> Mapping[str, Mapping[Pair, tuple[bool, float]]]: ...
    @property
    def notified_at(self) -> Mapping[str, Mapping[Pair, float]]: ...


def contact_table(
    world: Crowd,
    settled: Sequence[
        tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
    ],
    true_pairs: set[tuple[int, int]],
    judge: Judgements,
) -> dict[str, NDArray[Any]]:
    n = np.int64(world.n)
    if settled:
        keys, secs, dist, low = (np.concatenate([s[k] for s in settled]) for k in range(4))
    else:
        keys, secs, dist, low = np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0)
    day, a, b = keys // (n * n), (keys // n) % n, keys % n
    close_pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    extra: set[tuple[int, int]] = set()
    for name in judge.estimators:
        extra |= {p for p in judge.flagged[name] if p not in close_pairs}
        extra |= {(min(i, j), max(i, j)) for i, j in judge.reported[name]} - close_pairs
    more = sorted(extra)
    a = np.concatenate((a, np.array([p[0] for p in more], np.int64)))
    b = np.concatenate((b, np.array([p[1] for p in more], np.int64)))
    k = len(more)
    minutes = np.concatenate((secs / 60.0, np.zeros(k)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.concatenate((np.where(secs > 0, dist / secs, np.nan), np.full(k, np.nan)))
    table: dict[str, NDArray[Any]] = {
        "agent_a": a,
        "agent_b": b,
        "day": np.concatenate((day * SECONDS_PER_DAY, np.full(k, -1, np.int64))).astype(np.int64),
        "companions": np.array(
            [world.companions(i, j) for i, j in zip(a.tolist(), b.tolist(), strict=True)], np.bool_
        ),
        "true_contact": np.array(
            [p in true_pairs for p in zip(a.tolist(), b.tolist(), strict=True)], np.bool_
        ),
        "minutes_close": minutes,
        "min_distance_m": np.concatenate((np.where(np.isfinite(low), low, np.nan), np.full(k, np.nan))),
        "mean_distance_m": mean,
    }
    for name in judge.estimators:
        verdicts, notified = judge.verdicts[name], judge.notified_at[name]
        for side, (me, other) in (("a", (a, b)), ("b", (b, a))):
            got = [verdicts.get(p) for p in zip(me.tolist(), other.tolist(), strict=True)]
            table[f"{name}_close_{side}"] = np.array([-1 if g is None else int(g[0]) for g in got], np.int64)
            table[f"{name}_score_{side}"] = np.array([np.nan if g is None else g[1] for g in got], np.float64)
            when = [notified.get(p) for p in zip(other.tolist(), me.tolist(), strict=True)]
            table[f"{name}_notified_{side}_at"] = np.array(
                [np.nan if w is None else w for w in when], np.float64
            )
    return table
