"""Matching published keys against observed IDs: the index, each scheme's batch matcher, results.

Exports load on first use (PEP 562), so ``match`` for one scheme imports only that scheme's matcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from proximity.matching.bluezone import BluezoneMatcher, match_bluezone
    from proximity.matching.dp3t import Dp3tMatcher, match_dp3t
    from proximity.matching.gaen import GaenMatcher, match_gaen
    from proximity.matching.index import ObservedIdIndex
    from proximity.matching.prepared import PreparedKeys
    from proximity.matching.results import DayMatch, KeyMatch, MatchColumns, group_by_day
    from proximity.schemes.published import DiagnosisKey, KeyBatch, ReportType

__all__ = [
    "BluezoneMatcher",
    "DayMatch",
    "DiagnosisKey",
    "Dp3tMatcher",
    "GaenMatcher",
    "KeyBatch",
    "KeyMatch",
    "MatchColumns",
    "ObservedIdIndex",
    "PreparedKeys",
    "ReportType",
    "group_by_day",
    "match_bluezone",
    "match_dp3t",
    "match_gaen",
]

_HOMES = {
    "BluezoneMatcher": "proximity.matching.bluezone",
    "match_bluezone": "proximity.matching.bluezone",
    "Dp3tMatcher": "proximity.matching.dp3t",
    "match_dp3t": "proximity.matching.dp3t",
    "GaenMatcher": "proximity.matching.gaen",
    "match_gaen": "proximity.matching.gaen",
    "ObservedIdIndex": "proximity.matching.index",
    "PreparedKeys": "proximity.matching.prepared",
    "DayMatch": "proximity.matching.results",
    "KeyMatch": "proximity.matching.results",
    "MatchColumns": "proximity.matching.results",
    "group_by_day": "proximity.matching.results",
    "DiagnosisKey": "proximity.schemes.published",
    "KeyBatch": "proximity.schemes.published",
    "ReportType": "proximity.schemes.published",
}


__getattr__, __dir__ = lazy_exports(globals(), _HOMES, __all__)
