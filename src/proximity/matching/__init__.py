"""Matching published keys against observed IDs: the index, the GAEN and Bluezone matchers, results."""

from proximity.matching.bluezone import BluezoneMatcher, match_bluezone
from proximity.matching.gaen import GaenMatcher, match_gaen
from proximity.matching.index import ObservedIdIndex
from proximity.matching.keys import DiagnosisKey, KeyBatch, ReportType
from proximity.matching.results import DayMatch, KeyMatch, group_by_day

__all__ = [
    "BluezoneMatcher",
    "DayMatch",
    "DiagnosisKey",
    "GaenMatcher",
    "KeyBatch",
    "KeyMatch",
    "ObservedIdIndex",
    "ReportType",
    "group_by_day",
    "match_bluezone",
    "match_gaen",
]
