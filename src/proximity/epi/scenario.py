"""An epidemic scenario (TOML): the population, the virus and testing, manual tracing, the app.

Every check runs when the file loads, before any simulation: an adoption outside [0, 1] or above
smartphone ownership, a Covasim layer without a venue mapping, a population too large for memory,
a coupling file measured for another scheme or OS mix each get a :class:`EpidemicScenarioError`
naming the key. The layout is documented in docs/epidemic.md and simulations/quang-ninh-*.toml.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from proximity.epi.coupling import LAYERS, Coupling, CouplingError, DelayModel, coupling_inputs, load_coupling
from proximity.errors import ProximityError
from proximity.schemes.registry import SCHEME_NAMES

__all__ = [
    "BYTES_PER_AGENT",
    "EpidemicScenario",
    "EpidemicScenarioError",
    "estimated_memory",
    "load_epidemic",
]

# Peak RSS of one Covasim run per simulated agent, measured here (docs/epidemic.md: 1.32 M agents,
# 180 days, 2.17 GB), plus the interpreter with Covasim, Starsim and numba loaded.
BYTES_PER_AGENT = 1_350.0
BASE_BYTES = 400e6
MAX_SCENARIO_BYTES = 1 << 20


class EpidemicScenarioError(ProximityError, ValueError):
    """An epidemic scenario that cannot be run (bad TOML, unknown key, impossible value)."""


@dataclass(frozen=True, slots=True)
class Testing:
    symp_prob: float = 0.1
    asymp_prob: float = 0.001
    symp_quar_prob: float = 0.5
    asymp_quar_prob: float = 0.1
    test_delay: int = 1


@dataclass(frozen=True, slots=True)
class ManualTracing:
    enabled: bool = True
    trace_probs: dict[str, float] = field(default_factory=lambda: {"h": 1.0, "s": 0.5, "w": 0.5, "c": 0.3})
    trace_time: dict[str, float] = field(default_factory=lambda: {"h": 0.0, "s": 1.0, "w": 1.0, "c": 3.0})


@dataclass(frozen=True, slots=True)
class App:
    scheme: str = "bluezone"
    os_mix: dict[str, float] = field(default_factory=lambda: {"android": 1.0})
    foreground_share: float = 0.1
    ownership: float = 1.0
    adoption_by: str = "agent"  # or "household": a household carries the app or not, together
    compliance: float = 0.8  # P(quarantine | notified)
    upload: float = 1.0  # P(a diagnosed app user uploads the keys)
    coupling: str = "coupling/quang-ninh.json"  # relative to the scenario file
    venues: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "h": {"home": 1.0},
            "s": {"classroom": 1.0},
            "w": {"office": 1.0},
            "c": {"market": 0.5, "bus": 0.5},
        }
    )
    delay: DelayModel = field(default_factory=DelayModel)
    coupling_seeds: dict[str, int] = field(
        default_factory=lambda: {"home": 30, "classroom": 20, "office": 4, "bus": 20, "market": 6}
    )


@dataclass(frozen=True, slots=True)
class EpidemicScenario:
    name: str
    population: int  # people represented
    agents: int  # agents simulated; each stands for population / agents people (Covasim's pop_scale)
    days: int = 180
    start: str = "2020-08-05"
    location: str = "vietnam"
    initial_infections: int = 10  # in the represented population
    beta: float = 0.016  # Covasim's default per-contact daily transmissibility (2020 virus)
    beta_sensitivity: float = 0.25  # +-25 % for the sensitivity runs
    adoption: tuple[float, ...] = (0.0, 0.01, 0.272, 0.58, 1.0)
    sweep: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    seeds: int = 5
    memory_cap: float = 0.0  # bytes per run; 0 = 80 % of this machine's memory
    testing: Testing = field(default_factory=Testing)
    manual: ManualTracing = field(default_factory=ManualTracing)
    app: App = field(default_factory=App)
    source: Path | None = None  # the file it was read from (the coupling path is relative to it)

    def __post_init__(self) -> None:
        _check(self)

    @property
    def pop_scale(self) -> float:
        return self.population / self.agents

    @property
    def seeded(self) -> int:
        """Initial infections among the simulated agents (at least one)."""
        return max(1, round(self.initial_infections / self.pop_scale))

    def with_overrides(self, **changes: Any) -> EpidemicScenario:
        return replace(self, **changes)

    def coupling_path(self) -> Path:
        base = self.source.parent if self.source is not None else Path.cwd()
        return base / self.app.coupling

    def load_coupling(self) -> Coupling:
        """The measured per-layer figures, refused if measured for other app settings."""
        path = self.coupling_path()
        try:
            coupling = load_coupling(path)
            coupling.check_inputs(
                coupling_inputs(self.app.venues, self.app.scheme, self.app.os_mix, self.app.foreground_share),
                str(path),
            )
        except CouplingError as error:
            raise EpidemicScenarioError(f"{self.name}: {error}") from None
        return coupling


def estimated_memory(agents: int) -> float:
    """Bytes one run of ``agents`` needs at its peak (measured per agent; docs/epidemic.md)."""
    return BASE_BYTES + BYTES_PER_AGENT * agents


def machine_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 8e9


def _fail(message: str) -> EpidemicScenarioError:
    return EpidemicScenarioError(message)


def _number(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not (ok and low <= value <= high):
        kind = "a whole number" if integer else "a number"
        raise _fail(f"{name} must be {kind} in [{low:g}, {high:g}], got {value!r:.60}")


def check_adoptions(values: Any, ownership: float, key: str = "adoption") -> tuple[float, ...]:
    """Adoptions as floats, each in [0, 1] and at most smartphone ownership."""
    if not isinstance(values, list | tuple) or not values:
        raise _fail(f"{key} must be a non-empty list of shares in [0, 1], got {values!r:.60}")
    for p in values:
        _number(key, p, 0.0, 1.0)
        if p > ownership:
            raise _fail(
                f"{key} {p} exceeds app.ownership {ownership}: adoption is the share of everyone carrying "
                "a phone running the app"
            )
    return tuple(float(p) for p in values)


def _check(s: EpidemicScenario) -> None:
    if not (isinstance(s.name, str) and s.name):
        raise _fail("name must be a non-empty string")
    _number("population", s.population, 1, 2e9, integer=True)
    _number("agents", s.agents, 100, s.population, integer=True)
    _number("days", s.days, 1, 3650, integer=True)
    _number("initial_infections", s.initial_infections, 1, s.population, integer=True)
    _number("beta", s.beta, 0.0, 1.0)
    _number("beta_sensitivity", s.beta_sensitivity, 0.0, 0.99)
    _number("seeds", s.seeds, 1, 10_000, integer=True)
    if s.location != "vietnam":
        pass  # any Covasim location name; checked by Covasim when the population is made
    check_adoptions(list(s.adoption), s.app.ownership)
    check_adoptions(list(s.sweep), s.app.ownership, "sweep")
    t = s.testing
    for name in ("symp_prob", "asymp_prob", "symp_quar_prob", "asymp_quar_prob"):
        _number(f"testing.{name}", getattr(t, name), 0.0, 1.0)
    _number("testing.test_delay", t.test_delay, 0, 60, integer=True)
    for key in ("trace_probs", "trace_time"):
        table = getattr(s.manual, key)
        for layer, value in table.items():
            if layer not in LAYERS:
                raise _fail(f"manual_tracing.{key}: unknown layer {layer!r}; layers are {', '.join(LAYERS)}")
            _number(f"manual_tracing.{key}.{layer}", value, 0.0, 1.0 if key == "trace_probs" else 60.0)
    a = s.app
    _number("app.ownership", a.ownership, 0.0, 1.0)
    _number("app.foreground_share", a.foreground_share, 0.0, 1.0)
    _number("app.compliance", a.compliance, 0.0, 1.0)
    _number("app.upload", a.upload, 0.0, 1.0)
    if a.adoption_by not in ("agent", "household"):
        raise _fail(f"app.adoption_by must be 'agent' or 'household', got {a.adoption_by!r}")
    if a.scheme not in SCHEME_NAMES:  # the simulator runs every registered scheme
        raise _fail(f"app.scheme must be one of {', '.join(SCHEME_NAMES)}, got {a.scheme!r}")
    if abs(sum(a.os_mix.values()) - 1) > 1e-9 or any(v < 0 for v in a.os_mix.values()):
        raise _fail(f"app.os_mix shares must be >= 0 and sum to 1, got {a.os_mix}")
    missing = [layer for layer in LAYERS if layer not in a.venues]
    if missing:
        raise _fail(
            f"app.venues: layer {missing[0]!r} has no venue mapping (every Covasim layer {', '.join(LAYERS)} "
            "needs one, e.g. c = {market = 0.5, bus = 0.5})"
        )
    for layer, mix in a.venues.items():
        if layer not in LAYERS:
            raise _fail(f"app.venues: unknown layer {layer!r}; layers are {', '.join(LAYERS)}")
        if not mix or any(not (isinstance(w, int | float) and w > 0) for w in mix.values()):
            raise _fail(f"app.venues.{layer}: give venues with positive weights, got {mix!r}")
        if abs(sum(mix.values()) - 1) > 1e-9:
            raise _fail(f"app.venues.{layer}: weights must sum to 1, got {sum(mix.values()):g}")
        for venue in mix:
            if venue not in a.coupling_seeds:
                raise _fail(f"app.coupling_seeds: venue {venue!r} (layer {layer}) has no seed count")
    _number("memory_cap", s.memory_cap, 0.0, 1e15)
    cap = s.memory_cap or 0.8 * machine_memory()
    need = estimated_memory(s.agents)
    if need > cap:
        raise _fail(
            f"{s.agents:,} agents need about {need / 1e9:.3g} GB per run, more than the "
            f"{cap / 1e9:.3g} GB {'memory_cap' if s.memory_cap else 'this machine can give (80 % of RAM)'}; "
            "simulate fewer agents (each standing for population / agents people) or raise memory_cap"
        )


_TOP = {f for f in EpidemicScenario.__dataclass_fields__ if f not in ("testing", "manual", "app", "source")}


def scenario_from_dict(data: Mapping[str, Any], source: Path | None = None) -> EpidemicScenario:
    """Build a scenario from parsed TOML; unknown keys are errors (a typo must not be ignored)."""
    data = dict(data)
    sections = {"testing": Testing, "manual_tracing": ManualTracing, "app": App}
    unknown = sorted(set(data) - _TOP - set(sections))
    if unknown:
        raise _fail(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(_TOP | set(sections)))}")
    parts: dict[str, Any] = {}
    for key, cls in sections.items():
        raw = dict(data.pop(key, {}))
        if not isinstance(raw, dict):
            raise _fail(f"[{key}] must be a table")
        if key == "app" and "delay" in raw:
            delay = dict(raw.pop("delay"))
            if "diagnosis_hours" in delay:
                delay["diagnosis_hours"] = tuple(delay["diagnosis_hours"])
            try:
                raw["delay"] = DelayModel(**delay)
            except TypeError as error:
                raise _fail(f"app.delay: {error}") from None
            except CouplingError as error:
                raise _fail(f"app.delay: {error}") from None
        known = {f.name for f in fields(cls)}
        bad = sorted(set(raw) - known)
        if bad:
            raise _fail(f"unknown key {key}.{bad[0]}; known: {', '.join(sorted(known))}")
        parts["manual" if key == "manual_tracing" else key] = cls(**raw)
    for key in ("adoption", "sweep"):
        if key in data:
            if not isinstance(data[key], list):
                raise _fail(f"{key} must be a list of shares in [0, 1]")
            data[key] = tuple(data[key])
    if "start" in data:
        data["start"] = str(data["start"])
    try:
        return EpidemicScenario(**data, **parts, source=source)
    except TypeError as error:
        raise _fail(f"scenario: {error}") from None


def load_epidemic(path: str | Path) -> EpidemicScenario:
    """Read and check an epidemic scenario file (simulations/quang-ninh-*.toml)."""
    path = Path(path)
    try:
        raw = path.read_bytes()[: MAX_SCENARIO_BYTES + 1]
    except OSError as error:
        raise _fail(f"cannot read scenario {path}: {error.strerror}") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise _fail(f"scenario {path} is larger than {MAX_SCENARIO_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise _fail(f"scenario {path} is not valid TOML: {error}") from None
    if "population" not in data:
        raise _fail(f"scenario {path}: population is required (an epidemic scenario, not a venue)")
    return scenario_from_dict(data, source=path)
