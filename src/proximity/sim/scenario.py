"""A scenario: the venue and crowd, the phones, the channel, the contact rule; loaded from TOML.

File layout (every key optional except ``name`` and ``[crowd]`` agents/width/height)::

    name = "classroom"
    start = "2020-08-05T08:00:00Z"   # or unix seconds
    duration = 3600                  # s
    step = 1.0                       # s
    scheme = "gaen"                  # any registered scheme (proximity.schemes.registry.SCHEME_NAMES)
    duty = "gaen"                    # the phones' duty cycle by name (default: the scheme's), or a
                                     # [duty] table of seconds: scan_on, scan_period, advertise_on,
                                     # advertise_period (all four; 0 < on <= period)
    adoption = [0.2, 0.6]            # default sweep
    estimators = ["probabilistic"]
    contact_distance = 2.0           # m   } the ground-truth rule:
    contact_minutes = 15.0           # min } within distance for minutes in a UTC day
    chunk = 900                      # s of sightings generated (and logged) at a time
    forget = 0                       # s apart after which a pair is judged and dropped (0 = per day)
    hold = 0                         # s of a pair's sightings judged as one piece (0 = no limit)
    pair_scores = true               # keep every pair's score (ROC, AUC); false for a city
    memory_cap = 4e9                 # bytes a run may need (estimated before anything is allocated)
    contact_table = true             # keep one row per close or flagged pair (contacts.csv); false for a city
    ownership = 1.0                  # share of agents with a smartphone (adoption cannot exceed it)
    adoption_by = "agent"            # or "group": a walking group adopts (or not) together; or
                                     # "household" (needs [crowd] household_size): a household does
    os_mix = {android = 1.0}         # share of phones per OS (sums to 1); see foreground_share
    foreground_share = 0.1           # share of time an app is in the foreground (iOS Bluezone only
                                     # advertises then); assumed, no published figure
    log = "memory"                   # or "sqlite": every sighting through the real encounter log
    shards = 1                       # Dask tasks per run (its phones in shards; identical results)
    [crowd]  ... CrowdParams fields
    [channel] ... ChannelParams fields
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from proximity.errors import ProximityError
from proximity.estimation import estimator_names
from proximity.estimation.calibration import FLEET_RSSI_CORRECTION_DB
from proximity.schemes.registry import SCHEME_NAMES
from proximity.sim.batching import BATCH_POINTS, BATCH_STEPS
from proximity.sim.channel import ChannelParams, hearing_radius
from proximity.sim.duty import DUTY_CYCLES, OPERATING_SYSTEMS, DutyCycle
from proximity.sim.mobility import CrowdParams
from proximity.times import LATEST_TIME, parse_time

__all__ = [
    "MAX_SCENARIO_BYTES",
    "MAX_STEPS",
    "MEMORY_CAP_BYTES",
    "MIN_STEP",
    "Scenario",
    "ScenarioError",
    "estimated_memory",
    "load_scenario",
    "scenario_from_dict",
]


# Limits checked before a run allocates anything (see :func:`estimated_memory`).
MEMORY_CAP_BYTES = 4e9  # default ``memory_cap``: what a run may need; raise it in the file for a big machine
MIN_STEP = 1e-3  # s: a smaller step makes no progress on a unix-time clock (1e-300 never advances)
MAX_STEPS = 100_000_000  # duration / step: more steps than this would run for days
MAX_SCENARIO_BYTES = 1 << 20  # a scenario file is a few hundred bytes
DUTY_KEYS = ("scan_on", "scan_period", "advertise_on", "advertise_period")  # a [duty] table, seconds
LOG_KINDS = ("memory", "sqlite")  # where sightings go: what the log returns, or the real SQLite log


class ScenarioError(ProximityError, ValueError):
    """A scenario file that cannot be used (bad TOML, unknown key, impossible value)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    crowd: CrowdParams
    channel: ChannelParams = field(default_factory=ChannelParams)
    start: float = 1596614400.0  # 2020-08-05 08:00 UTC
    duration: float = 3600.0
    step: float = 1.0
    scheme: str = "gaen"
    duty: str | DutyCycle = ""  # a name (default: the scheme's own) or a [duty] table of seconds
    adoption: tuple[float, ...] = (0.6,)
    estimators: tuple[str, ...] = ("probabilistic",)
    contact_distance: float = 2.0
    contact_minutes: float = 15.0
    rssi_correction: float = FLEET_RSSI_CORRECTION_DB  # the correction rssi_at_1m is read with
    chunk: float = 900.0
    forget: float = 0.0  # > 0: pairs apart this long are settled (bounded memory; see sim/ledger.py)
    hold: float = 0.0  # > 0: a pair's sightings are judged in pieces of about this long
    pair_scores: bool = True  # keep each heard pair's score for the ROC (one float per pair)
    memory_cap: float = MEMORY_CAP_BYTES  # bytes a run may need (:func:`estimated_memory`)
    contact_table: bool = True  # keep the contact-level table (sim/contacts.py)
    # adoption with structure (docs/simulation.md, "Adoption")
    ownership: float = 1.0
    adoption_by: str = "agent"
    os_mix: tuple[tuple[str, float], ...] = (("android", 1.0),)
    foreground_share: float = 0.1
    log: str = "memory"  # "sqlite": write every sighting through the real SQLite encounter log
    shards: int = 1  # Dask tasks per run (phones split in shards; same results): sim/split.py

    def __post_init__(self) -> None:
        if self.scheme not in SCHEME_NAMES:  # every registered scheme is simulated
            raise ScenarioError(f"scheme must be one of {', '.join(SCHEME_NAMES)}, got {self.scheme!r}")
        if not isinstance(self.duty, str | DutyCycle) or (
            isinstance(self.duty, str) and self.duty and self.duty not in DUTY_CYCLES
        ):
            raise ScenarioError(
                f"duty must be one of {', '.join(DUTY_CYCLES)} or a table of {', '.join(DUTY_KEYS)}, "
                f"got {self.duty!r}"
            )
        if not isinstance(self.pair_scores, bool):
            raise ScenarioError(f"pair_scores must be true or false, got {self.pair_scores!r}")
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) or self.shards < 1:
            raise ScenarioError(f"shards must be a whole number >= 1, got {self.shards!r}")
        if self.shards > self.crowd.agents:
            raise ScenarioError(f"shards ({self.shards}) must not exceed crowd agents ({self.crowd.agents})")
        if self.log not in LOG_KINDS:
            raise ScenarioError(f"log must be one of {', '.join(LOG_KINDS)}, got {self.log!r}")
        if not isinstance(self.contact_table, bool):
            raise ScenarioError(f"contact_table must be true or false, got {self.contact_table!r}")
        for name in ("start", "duration", "step", "chunk", "forget", "hold", "memory_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ScenarioError(f"{name} must be a finite number, got {value!r:.40}")
        if not (self.duration > 0 and 0 < self.step <= self.duration):
            raise ScenarioError("duration must be positive and step in (0, duration]")
        if self.step < MIN_STEP or self.duration / self.step > MAX_STEPS:
            raise ScenarioError(
                f"step must be at least {MIN_STEP:g} s and duration / step at most {MAX_STEPS:,} "
                f"(MIN_STEP, MAX_STEPS), got step {self.step:g} s over {self.duration:g} s"
            )
        if not 0 <= self.start <= LATEST_TIME - self.duration:
            raise ScenarioError("start (and start + duration) must lie between 1970 and year 9998")
        cycle = self.cycle
        for what, on, period in (
            ("scan", cycle.scan_on, cycle.scan_period),
            ("advertise", cycle.advertise_on, cycle.advertise_period),
        ):
            # phones scan (advertise) at a step if its start falls in the window: a step longer than
            # the window would skip whole windows of some phones and stretch others'
            if on < period and self.step > on:
                raise ScenarioError(
                    f"step {self.step:g} s is longer than the {self.duty_cycle} duty cycle's {what} "
                    f"window ({on:g} s on every {period:g} s); use step <= {on:g}"
                )
        if not (math.isfinite(self.chunk) and self.chunk >= self.step):
            raise ScenarioError(f"chunk must be finite and at least one step, got {self.chunk}")
        if not (math.isfinite(self.forget) and (self.forget == 0 or self.forget >= self.chunk)):
            raise ScenarioError("forget must be 0 (judge pairs per day) or at least one chunk")
        if not (math.isfinite(self.contact_distance) and self.contact_distance > 0):
            raise ScenarioError(f"contact_distance must be positive and finite, got {self.contact_distance}")
        if not (math.isfinite(self.contact_minutes) and self.contact_minutes >= 0):
            raise ScenarioError(f"contact_minutes must be finite and >= 0, got {self.contact_minutes}")
        if not (math.isfinite(self.hold) and (self.hold == 0 or self.hold >= 2 * self.contact_minutes * 60)):
            raise ScenarioError("hold must be 0 (no limit) or at least twice contact_minutes")
        if not self.crowd.arrival_spread < self.duration:
            raise ScenarioError(
                f"crowd arrival_spread ({self.crowd.arrival_spread:g} s) must be shorter than the "
                f"duration ({self.duration:g} s): agents arriving after the end are never present"
            )
        for p in self.adoption:
            if not 0.0 <= p <= 1.0:
                raise ScenarioError(f"adoption must be in [0, 1], got {p}")
        known = set(estimator_names())
        for name in self.estimators:
            if name not in known:
                raise ScenarioError(f"unknown estimator {name!r}; choose from {', '.join(sorted(known))}")
        if not self.memory_cap > 0:
            raise ScenarioError(f"memory_cap must be a positive number of bytes, got {self.memory_cap!r}")
        need = estimated_memory(self)
        if need > self.memory_cap:
            raise ScenarioError(
                f"this scenario needs about {need / 1e9:.3g} GB (venue {self.crowd.width:g} x "
                f"{self.crowd.height:g} m in cells of contact_distance {self.contact_distance:g} m and "
                f"the hearing radius, {self.crowd.agents} agents), more than "
                f"memory_cap {self.memory_cap / 1e9:.3g} GB; enlarge the cells or raise memory_cap"
            )

        self._check_adoption_structure()

    def _check_adoption_structure(self) -> None:
        """The adoption keys (kept apart from the other checks): each error names its key."""
        if not (isinstance(self.ownership, int | float) and 0.0 < self.ownership <= 1.0):
            raise ScenarioError(f"ownership must be in (0, 1], got {self.ownership!r}")
        for p in self.adoption:
            if p > self.ownership:
                raise ScenarioError(
                    f"adoption {p} exceeds ownership {self.ownership}: adoption is the share of all agents "
                    "carrying a phone running the app"
                )
        if self.adoption_by not in ("agent", "group", "household"):
            raise ScenarioError(
                f"adoption_by must be 'agent', 'group' or 'household', got {self.adoption_by!r}"
            )
        if self.adoption_by == "household" and not self.crowd.household_size:
            raise ScenarioError("adoption_by = 'household' needs households: set [crowd] household_size >= 2")
        names = [name for name, _ in self.os_mix]
        unknown = sorted(set(names) - set(OPERATING_SYSTEMS))
        if unknown or len(set(names)) != len(names):
            raise ScenarioError(f"os_mix: each OS once, from {', '.join(OPERATING_SYSTEMS)}; got {names}")
        shares = [share for _, share in self.os_mix]
        if any(not (isinstance(s, int | float) and math.isfinite(s) and s >= 0) for s in shares):
            raise ScenarioError(f"os_mix shares must be finite and >= 0, got {shares}")
        if abs(sum(shares) - 1.0) > 1e-9:
            raise ScenarioError(f"os_mix shares must sum to 1, got {sum(shares):g}")
        if not (isinstance(self.foreground_share, int | float) and 0.0 <= self.foreground_share <= 1.0):
            raise ScenarioError(f"foreground_share must be in [0, 1], got {self.foreground_share!r}")

    @property
    def duty_cycle(self) -> str:
        """The duty cycle's name ("custom" for a [duty] table)."""
        return self.duty.name if isinstance(self.duty, DutyCycle) else (self.duty or self.scheme)

    @property
    def cycle(self) -> DutyCycle:
        """The phones' scan and advertise duty cycle."""
        return self.duty if isinstance(self.duty, DutyCycle) else DUTY_CYCLES[self.duty_cycle]

    def with_overrides(self, **changes: Any) -> Scenario:
        return replace(self, **changes)


def estimated_memory(scenario: Scenario) -> float:
    """Bytes a run needs, estimated from its dominant terms: the neighbour grids (cells of
    ``contact_distance`` and of the channel's hearing radius for reference devices, over a batch of
    steps laid side by side, two int64 per cell), the seat grid, and per-agent state. An estimate
    (grids span the whole venue, the neighbour search only the occupied part), cheap enough to check
    before a run allocates."""
    crowd = scenario.crowd
    radius = hearing_radius(scenario.channel, np.zeros(1))
    batch = max(1, min(BATCH_STEPS, BATCH_POINTS // max(1, crowd.agents)))
    span_x = batch * (crowd.width + 3.0 * radius)

    def cells(size: float) -> float:
        return (span_x / size + 3.0) * (crowd.height / size + 3.0)

    grids = 16.0 * (cells(scenario.contact_distance) + cells(radius))
    seats = 0.0
    if crowd.layout == "seats":
        seats = 48.0 * (crowd.width / crowd.seat_spacing + 1.0) * (crowd.height / crowd.seat_spacing + 1.0)
    return grids + seats + 256.0 * crowd.agents * batch


def _build(cls: type[Any], table: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**values)
    except ScenarioError as error:
        raise ScenarioError(f"{where}: {error}") from None
    except (TypeError, ValueError, ArithmeticError) as error:  # also numpy's ufunc type errors
        raise ScenarioError(f"{where}: {str(error)[:300]}") from None


def scenario_from_dict(data: Mapping[str, Any], where: str = "scenario") -> Scenario:
    top = dict(data)
    crowd = top.pop("crowd", None)
    if not isinstance(crowd, Mapping):
        raise ScenarioError(f"{where}: a [crowd] table with agents, width and height is required")
    channel = top.pop("channel", {})
    if not isinstance(channel, Mapping):
        raise ScenarioError(f"{where}: [channel] must be a table")
    if "start" in top:
        try:
            top["start"] = float(parse_time(str(top["start"])[:64]))
        except (TypeError, ValueError, OverflowError) as error:
            raise ScenarioError(f"{where}: start: {error}") from None
    if "os_mix" in top:
        mix = top["os_mix"]
        if not isinstance(mix, Mapping):
            raise ScenarioError(f"{where}: os_mix must be a table like {{android = 0.7, ios = 0.3}}")
        top["os_mix"] = tuple((str(k), v) for k, v in mix.items())
    if isinstance(top.get("duty"), Mapping):
        top["duty"] = _duty(top["duty"], where)
    top["crowd"] = _build(CrowdParams, crowd, f"{where} [crowd]")
    top["channel"] = _build(ChannelParams, channel, f"{where} [channel]")
    scenario: Scenario = _build(Scenario, top, where)
    return scenario


def _duty(table: Mapping[str, Any], where: str) -> DutyCycle:
    """A [duty] table: every key, seconds, each window on for no longer than its period."""
    unknown = sorted(set(table) - set(DUTY_KEYS))
    missing = [key for key in DUTY_KEYS if key not in table]
    if unknown or missing:
        raise ScenarioError(
            f"{where} [duty]: needs exactly {', '.join(DUTY_KEYS)} (seconds); "
            f"unknown {', '.join(unknown) or 'none'}, missing {', '.join(missing) or 'none'}"
        )
    values: dict[str, float] = {}
    for key in DUTY_KEYS:
        value = table[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value > 0)
        ):
            raise ScenarioError(
                f"{where} [duty] {key} must be a positive number of seconds, got {value!r:.40}"
            )
        values[key] = float(value)
    for what in ("scan", "advertise"):
        on, period = values[f"{what}_on"], values[f"{what}_period"]
        if on > period:
            raise ScenarioError(
                f"{where} [duty] {what}_on ({on:g} s) is longer than {what}_period ({period:g} s): a phone "
                f"cannot {what} for longer than the cycle it repeats in"
            )
    return DutyCycle("custom", **values)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file (see the module docstring for the keys)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SCENARIO_BYTES + 1)
    except OSError as error:
        raise ScenarioError(f"cannot read scenario {path}: {error.strerror or error}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"scenario {path} is larger than {MAX_SCENARIO_BYTES} bytes (MAX_SCENARIO_BYTES)")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ScenarioError(f"scenario {path} is not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"scenario {path} is not valid TOML: {error}") from None
    except RecursionError:
        raise ScenarioError(f"scenario {path} is nested deeper than TOML's parser allows") from None
    data.setdefault("name", Path(path).stem)
    return scenario_from_dict(data, str(path))
