"""What every fuzz harness shares: mutation of real seed files, and the guard around each example.

Hypothesis drives the harnesses (not atheris): it is already a test dependency, runs on any CPython,
shrinks a failure to a minimal input and replays it as an ordinary pytest failure; atheris would add
coverage guidance but needs a libFuzzer-built interpreter setup this project does not have. The seeds
are real files (fixtures, data, files the library writes), mutated byte-wise and structurally.

Each harness runs its reader on ``FUZZ_EXAMPLES`` inputs (``make test``: a few hundred; ``make fuzz``:
100,000) inside :func:`guarded`, which enforces the issue's bounds:

- only :class:`~proximity.errors.ProximityError` may escape a reader (anything else fails the test,
  with the input shrunk by Hypothesis);
- 10 s per example: a SIGALRM watchdog raises :class:`Hang` (a BaseException, so no reader's
  ``except Exception`` can swallow it); this is a safety net, not a timing assertion;
- 1 GiB of memory: the address-space limit is set to what the process has mapped plus 1 GiB for the
  harness, so an allocation beyond it fails as MemoryError (an escape) instead of swapping; the peak
  resident memory of the harness (VmHWM after resetting it) is reported.

With ``FUZZ_REPORT=file`` each harness appends one JSON line: examples, refused (typed errors),
escapes, hangs, peak MB, seconds; ``scripts/fuzz.py`` (``make fuzz``) prints them as a table.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proximity.errors import ProximityError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SECONDS_PER_EXAMPLE = 10
MEMORY_LIMIT = 1 << 30
REPORT = os.environ.get("FUZZ_REPORT")

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the watchdog below bounds an example; no timing assertion on a loaded machine
    database=None,
    derandomize=os.environ.get("FUZZ_SEED") is None and EXAMPLES <= 1000,  # make test: reproducible
    suppress_health_check=list(HealthCheck),
)


class Hang(BaseException):
    """An example ran past :data:`SECONDS_PER_EXAMPLE`."""


@dataclass
class Stats:
    name: str
    allow_escapes: bool = False
    examples: int = 0
    refused: int = 0
    hangs: int = 0
    escapes: collections.Counter[str] = field(default_factory=collections.Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def call(self, reader: Callable[[], object]) -> None:
        """Run one example of the reader under the watchdog; typed refusals are counted, not raised."""
        self.examples += 1
        signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_EXAMPLE)
        try:
            reader()
        except ProximityError:
            self.refused += 1
        except Hang:
            self.hangs += 1
            raise
        except Exception as error:
            if not self.allow_escapes:
                raise
            kind = f"{type(error).__name__}"
            self.escapes[kind] += 1
            self.samples.setdefault(kind, str(error)[:160])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"an example ran past {SECONDS_PER_EXAMPLE} s")


def _status(field_name: str) -> int:
    """A field of /proc/self/status in bytes (Linux), 0 elsewhere."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


@contextmanager
def guarded(name: str, *, allow_escapes: bool = False) -> Iterator[Stats]:
    """Bound a harness (watchdog, memory cap), then report it; see the module docstring."""
    stats = Stats(name, allow_escapes)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _status("VmSize") + MEMORY_LIMIT
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    _reset_peak()
    base = _status("VmRSS")
    started = time.monotonic()
    try:
        yield stats
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, previous)
        peak = max(0, _status("VmHWM") - base)
        if REPORT:
            line = {
                "harness": name,
                "examples": stats.examples,
                "refused": stats.refused,
                "escapes": sum(stats.escapes.values()),
                "escape_kinds": dict(stats.escapes),
                "escape_samples": stats.samples,
                "hangs": stats.hangs,
                "peak_mb": round(peak / 2**20, 1),
                "seconds": round(time.monotonic() - started, 1),
            }
            with open(REPORT, "a") as handle:
                handle.write(json.dumps(line) + "\n")


def fuzz_file_reader(name: str, data: st.SearchStrategy[bytes], read: Callable[[Path], object]) -> None:
    """A harness for a reader that takes a path: each input is written to one file, then read."""
    with tempfile.TemporaryDirectory() as folder, guarded(name) as guard:
        path = Path(folder) / "input"

        @FUZZ_SETTINGS
        @given(data)
        def run(content: bytes) -> None:
            path.write_bytes(content)
            guard.call(lambda: read(path))

        run()


# -- mutation ----------------------------------------------------------------------------------------

INTERESTING = [
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x80",
    b"\x7f\xff\xff\xff",
    b"-1",
    b"0",
    b"1e308",
    b"-1e308",
    b"nan",
    b"inf",
    b"127",
    b"-1000",
    b"1" * 40,
    b"9" * 400,
    b'"',
    b",",
    b"\r\n",
    b"\n",
    b"[" * 64,
    b"{" * 64,
    b"\xef\xbb\xbf",
    b"\xc3\x28",
]


@st.composite
def mutated(draw: Any, seeds: Sequence[bytes], max_mutations: int = 8) -> bytes:
    """One seed, mutated a few times: bit flips, byte sets, cuts, insertions of interesting tokens,
    duplication of a slice, truncation; sometimes two seeds spliced."""
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(0, max_mutations))):
        kind = draw(st.integers(0, 6))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 0 and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == 1 and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == 2:
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == 3:
            data[at:at] = draw(st.sampled_from(INTERESTING))
        elif kind == 4:
            size = draw(st.integers(1, 256))
            data[at:at] = data[at : at + size]
        elif kind == 5:
            del data[at:]
        else:
            other = draw(st.sampled_from(list(seeds)))
            cut = draw(st.integers(0, len(other)))
            data[at:] = other[cut:]
    return bytes(data)


def inputs(seeds: Sequence[bytes], max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Mostly mutated seeds, sometimes random bytes."""
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), st.binary(max_size=max_size))


def json_values(depth: int = 3) -> st.SearchStrategy[Any]:
    """Any JSON value, including the awkward ones (huge integers, floats beyond the calendar)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e300, -1e300, 1596240000000, 2**63, 2147483376, 1.5, -1, 0, 127]),
        st.text(max_size=40),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=depth * 4,
    )
