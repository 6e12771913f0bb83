"""Time helpers shared by every scheme: UTC days, parsing, and the one place the wall clock is read.

Every time-dependent call in the library takes its time explicitly (``at=``); only the outer edges
(CLI, live node) fall back to :func:`now`.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from proximity.errors import InvalidTimeError

__all__ = ["LATEST_TIME", "SECONDS_PER_DAY", "format_utc", "now", "parse_time", "utc_midnight"]

SECONDS_PER_DAY = 86_400
# The latest time the library accepts: the end of year 9998 (ISO 8601 dates end with 9999; the year left
# over keeps every slot, key and day that such a time starts printable). Earlier than 1970 is refused too.
LATEST_TIME = 253_370_764_799


def now() -> float:
    """The wall clock, in unix seconds. Only edges of the library call this."""
    return time.time()


def utc_midnight(at: float) -> int:
    """Unix seconds of the UTC midnight that starts the day containing ``at``."""
    _check_finite(at)
    return math.floor(at / SECONDS_PER_DAY) * SECONDS_PER_DAY


def parse_time(text: str) -> float:
    """Parse unix seconds (``1596844800``, ``1596844800.5``) or ISO 8601; no offset means UTC."""
    value = text.strip()
    if not value:
        raise InvalidTimeError("empty time; give unix seconds or ISO 8601 (e.g. 2020-08-08T06:00:00Z)")
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        _check_finite(seconds)
        return seconds
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidTimeError(
            f"cannot read time {text!r}; give unix seconds or ISO 8601 (e.g. 2020-08-08T06:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_utc(at: float) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second, for tables a person reads (a time the calendar
    cannot hold, which validated input never gives, is shown as unix seconds rather than crashing)."""
    try:
        return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return f"unix time {at:g}"


def _check_finite(at: float) -> None:
    if not math.isfinite(at):
        raise InvalidTimeError(f"time must be a finite number of unix seconds, got {at!r}")
