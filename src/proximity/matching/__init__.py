"""Matching published keys against observed IDs: the index, each scheme's batch matcher, results."""

from proximity.matching.bluezone import BluezoneMatcher, match_bluezone
from proximity.matching.dp3t import Dp3tMatcher, match_dp3t
from proximity.matching.gaen import GaenMatcher, match_gaen
from proximity.matching.index import ObservedIdIndex
from proximity.matching.results import DayMatch, KeyMatch, group_by_day
from proximity.schemes.published import DiagnosisKey, KeyBatch, ReportType

__all__ = [
    "BluezoneMatcher",
    "DayMatch",
    "DiagnosisKey",
    "Dp3tMatcher",
    "GaenMatcher",
    "KeyBatch",
    "KeyMatch",
    "ObservedIdIndex",
    "ReportType",
    "group_by_day",
    "match_bluezone",
    "match_dp3t",
    "match_gaen",
]
