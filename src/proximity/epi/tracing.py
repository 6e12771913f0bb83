"""Digital contact tracing in Covasim: a :class:`covasim.contact_tracing` whose reach is the app's.

When an app user is diagnosed (and the keys are uploaded), each of their contacts in layer L who
also carries the app is notified with the layer's measured detection probability times the
quarantine compliance, on a day drawn from the measured delay (an hour-level delay is split between
day 0, 1, ... with the probabilities in the coupling file, since Covasim steps in whole days and
``trace_time`` would round it); false notifications put app users who were not contacts into
quarantine, drawn from the app users at the layer's measured rate per true app contact. Carrying
the app is an agent property fixed for the run: independent per agent, or per household.

With adoption 1, detection 1, no false notifications and no delay this is *exactly* Covasim's own
contact tracing with trace_probs = compliance: the same random stream (``_trace``) is drawn the same
way (tests/test_epi_coupling.py). Its own draws use their own named streams, so under Starsim's
common random numbers they do not disturb anything else. Give it its own ``name`` next to manual
tracing: Starsim seeds streams by module name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import covasim as cv  # quiet: proximity.epi set COVASIM_VERBOSE / STARSIM_INSTALL_FONTS first
import numpy as np
import starsim as ss

__all__ = ["AppTracing", "household_ids"]


def household_ids(
    edges_p1: np.ndarray[Any, Any], edges_p2: np.ndarray[Any, Any], n: int
) -> np.ndarray[Any, Any]:
    """Each agent's household (connected component of the household layer), as the smallest member."""
    import importlib

    coo_matrix: Any = importlib.import_module("scipy.sparse").coo_matrix  # the [sim] extra; no stubs
    connected_components: Any = importlib.import_module("scipy.sparse.csgraph").connected_components
    graph = coo_matrix((np.ones(len(edges_p1)), (np.asarray(edges_p1), np.asarray(edges_p2))), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1, n, np.int64)
    np.minimum.at(first, labels, np.arange(n))
    out: np.ndarray[Any, Any] = first[labels]
    return out


class AppTracing(cv.contact_tracing):  # type: ignore[misc]  # Covasim ships no type hints
    """App (digital) contact tracing with per-layer detection, false notifications and delays.

    Args:
        adoption: share of all agents carrying a phone running the app
        p_detect: layer -> P(a true contact is notified | both carry the app)
        false_rate: layer -> false notifications per true app contact of an index case
        offsets: P(notified k days after the diagnosis day), k = 0, 1, ...
        compliance: P(quarantine | notified)
        upload: P(a diagnosed app user's keys are published)
        adoption_by: "agent" (independent) or "household" (a household carries the app together)
    """

    def __init__(
        self,
        adoption: float,
        p_detect: Mapping[str, float],
        false_rate: Mapping[str, float] | None = None,
        offsets: Sequence[float] = (1.0,),
        compliance: float = 1.0,
        upload: float = 1.0,
        adoption_by: str = "agent",
        name: str = "app_tracing",
        **kwargs: Any,
    ) -> None:
        trace_probs = {layer: float(p) * compliance for layer, p in p_detect.items()}
        super().__init__(trace_probs=trace_probs, trace_time=0, name=name, **kwargs)
        self.adoption = float(adoption)
        self.false_rate = {k: float(v) for k, v in (false_rate or {}).items()}
        self.offsets = np.asarray(offsets, np.float64)
        self.compliance = float(compliance)
        self.upload = float(upload)
        self.adoption_by = adoption_by
        self._carry = ss.bernoulli(p=self.adoption)
        self._upload = ss.bernoulli(p=self.upload)
        self._offset = ss.random()
        self._false = ss.bernoulli(p=0.0)
        self.carries = np.zeros(0, np.bool_)
        # totals over the run, per layer: contacts of every diagnosed person, of diagnosed app users,
        # those notified by the app (true contacts), and false notifications that led to quarantine
        self.counts: dict[str, dict[str, int]] = {}

    def init_post(self) -> None:
        super().init_post()
        n = len(self.sim.people)
        everyone = ss.uids(np.arange(n))
        if self.adoption_by == "household":
            h = self.sim.networks["h"].edges
            home = household_ids(np.asarray(h.p1), np.asarray(h.p2), n)
            heads = ss.uids(np.unique(home))
            carries = np.zeros(n, np.bool_)
            carries[np.asarray(heads[self._carry.rvs(heads)])] = True
            self.carries = carries[home]
        else:
            self.carries = np.zeros(n, np.bool_)
            self.carries[np.asarray(everyone[self._carry.rvs(everyone)])] = True
        self.counts = {
            layer: {"contacts": 0, "app_index_contacts": 0, "app_contacts": 0, "notified": 0, "false": 0}
            for layer in self.sim.networks.keys()  # noqa: SIM118 (an ndict: iterating gives the networks)
        }

    def select_cases(self, sim: Any) -> Any:
        """Diagnosed today, carrying the app, keys uploaded."""
        inds = super().select_cases(sim)
        self._diagnosed = inds
        inds = inds[self.carries[np.asarray(inds)]]
        if self.upload < 1.0 and len(inds):
            inds = inds[self._upload.rvs(inds)]
        return inds

    def identify_contacts(self, sim: Any, trace_inds: Any) -> dict[int, Any]:
        """Contacts notified by the app, by day offset, plus false notifications."""
        contacts: dict[int, list[Any]] = {}
        diagnosed = getattr(self, "_diagnosed", trace_inds)
        for lkey, trace_prob in self.trace_probs.items():
            counts = self.counts[lkey]
            if len(diagnosed):
                counts["contacts"] += len(sim.networks[lkey].find_contacts(diagnosed))
            if (trace_prob == 0 and self.false_rate.get(lkey, 0.0) == 0) or not len(trace_inds):
                continue
            traceable = ss.uids(sim.networks[lkey].find_contacts(trace_inds))
            counts["app_index_contacts"] += len(traceable)
            traceable = traceable[self.carries[np.asarray(traceable)]]
            counts["app_contacts"] += len(traceable)
            if trace_prob > 0 and len(traceable):  # as the base class: no draw where it does not trace
                self._trace.set(p=trace_prob)
                traced = traceable[self._trace.rvs(traceable)]
                counts["notified"] += len(traced)
                self._by_offset(traced, contacts)
            false = self._false_notifications(lkey, traceable, trace_inds)
            if len(false):
                counts["false"] += len(false)
                self._by_offset(false, contacts)
        return {offset: ss.uids(np.unique(np.concatenate(uids))) for offset, uids in contacts.items()}

    def _by_offset(self, uids: Any, contacts: dict[int, list[Any]]) -> None:
        """Split notified people between day offsets with the measured delay's probabilities."""
        if len(self.offsets) == 1:
            contacts.setdefault(0, []).append(uids)
            return
        day = np.searchsorted(np.cumsum(self.offsets)[:-1], self._offset.rvs(uids), side="right")
        for offset in np.unique(day).tolist():
            contacts.setdefault(int(offset), []).append(uids[day == offset])

    def _false_notifications(self, lkey: str, app_contacts: Any, trace_inds: Any) -> Any:
        """App users who were not contacts, at ``false_rate`` per true app contact, who comply."""
        rate = self.false_rate.get(lkey, 0.0)
        if rate <= 0 or not len(app_contacts):
            return ss.uids()
        # a mask, not np.setdiff1d: that sorts every app user each call (half a full-size run's time)
        others = self.carries.copy()
        others[np.asarray(app_contacts)] = False
        others[np.asarray(trace_inds)] = False
        candidates = ss.uids(np.flatnonzero(others))
        if not len(candidates):
            return ss.uids()
        self._false.set(p=min(1.0, rate * len(app_contacts) * self.compliance / len(candidates)))
        return candidates[self._false.rvs(candidates)]
