"""Build the optional C extension that runs matching's per-key loops (metadata is in pyproject.toml).

``optional=True``: where no C compiler is available the package still installs and the pure Python
matching path runs (proximity.matching.native chooses it automatically).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "proximity.matching._native",
            sources=["src/proximity/matching/_native.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
