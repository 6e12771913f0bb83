"""Build the optional C extension of the crypto backend (metadata is in pyproject.toml).

``optional=True``: where no C compiler is available the package still installs and the Python reference
backend runs (proximity.crypto chooses it automatically).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "proximity.crypto._native",
            sources=["src/proximity/crypto/_native.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
