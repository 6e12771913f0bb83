"""Build the optional C extensions: the crypto backend, the simulator's packet kernel, its neighbour
searches and its walkers' steps (metadata is in pyproject.toml).

``optional=True``: where no C compiler is available the package still installs and the Python reference
backend runs (proximity.crypto chooses it automatically), and the simulator its numpy path.
"""

import sys

from setuptools import Extension, setup

# The crypto backend splits big batches over threads (pthreads; on Windows it runs them on one).
THREADS = [] if sys.platform == "win32" else ["-pthread"]

setup(
    ext_modules=[
        Extension(
            "proximity.crypto._native",
            sources=["src/proximity/crypto/_native.c"],
            extra_compile_args=["-O3", *THREADS],
            extra_link_args=THREADS,
            optional=True,
        ),
        Extension(
            "proximity.sim._kernel",
            sources=["src/proximity/sim/_kernel.c"],
            # no errno from sqrt: one instruction, no check branch (the same correctly rounded result);
            # no FP traps assumed, so branch-free selects vectorise (values unchanged); no contraction
            # into FMA where a clone targets AVX-512 (every product and sum rounded as numpy's);
            # portable flags only (no -march, no -ffast-math: packets must not change)
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "proximity.sim._pairs",
            sources=["src/proximity/sim/_pairs.c"],
            # the neighbour searches: the same flags as the kernel (distances as numpy's, bit for bit)
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "proximity.sim._walk",
            sources=["src/proximity/sim/_walk.c"],
            # a step of the walkers: the same flags (positions as numpy's, bit for bit)
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
            optional=True,
        ),
    ]
)
