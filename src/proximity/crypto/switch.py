"""The one switch: ``PROXIMITY_MATCH_BACKEND`` (or a ``backend=`` argument) picks the crypto backend.

* ``c`` -- :mod:`proximity.crypto.native`, the C extension (AES-NI/VAES, SHA-NI, no GIL);
* ``libcrypto`` / ``portable`` -- :mod:`proximity.crypto.reference`, vectorised numpy with hashlib and
  the system libcrypto's or ``cryptography``'s AES;
* ``python`` -- the reference backend with the fastest AES that loads; ``auto`` (default) -- C if it runs
  here (it builds and passes its self test on published vectors), else ``python``.

Asking for ``c`` or ``libcrypto`` where it cannot run raises
:class:`~proximity.errors.BackendUnavailableError` rather than silently running something else.
"""

from __future__ import annotations

import os
import threading

from proximity.crypto import native
from proximity.crypto.backend import CHOICES, ENV_VAR, CryptoBackend
from proximity.errors import BackendUnavailableError

__all__ = ["crypto_backend", "resolve_backend"]

_BACKENDS: dict[str, CryptoBackend] = {}  # by concrete name, and by "$" + the variable's value
_LOCK = threading.Lock()  # worker threads may ask at the same time


def _choice(backend: str | None) -> str:
    choice = (backend if backend is not None else os.environ.get(ENV_VAR, "")).strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"crypto backend must be one of {', '.join(CHOICES)}; got {choice!r}")
    return choice


def resolve_backend(backend: str | None = None) -> str:
    """The concrete backend a choice means here: "c", "libcrypto" or "portable".

    ``backend`` if given, else ``PROXIMITY_MATCH_BACKEND``, else ``auto``. Resolve once and pass the
    result on (to workers too), so a forced but unavailable backend fails before any work.
    """
    choice = _choice(backend)
    if choice == "auto":
        choice = "c" if native.unavailable_reason() is None else "python"
    if choice == "c":
        reason = native.unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError("c", reason)
        return "c"
    from proximity.crypto import reference  # numpy + an AES library: loaded only when it runs

    if choice == "python":
        return reference.fastest_aes()
    if choice == "libcrypto" and reference.fastest_aes() != "libcrypto":
        raise BackendUnavailableError("libcrypto", "libcrypto's AES does not load here")
    return choice


def crypto_backend(backend: str | None = None) -> CryptoBackend:
    """The backend for ``backend`` (any of :data:`CHOICES`; default: ``PROXIMITY_MATCH_BACKEND``), made
    once per process and shared."""
    if backend is None:  # the common call, from every single-key scheme function: one dict lookup
        setting = f"${os.environ.get(ENV_VAR, '')}"
        found = _BACKENDS.get(setting)
        if found is None:
            found = _BACKENDS[setting] = crypto_backend(os.environ.get(ENV_VAR, "auto"))
        return found
    name = resolve_backend(backend)
    found = _BACKENDS.get(name)
    if found is None:
        with _LOCK:
            found = _BACKENDS.get(name)
            if found is None:
                if name == "c":
                    found = native.NativeBackend()
                else:
                    from proximity.crypto import reference

                    found = reference.ReferenceBackend(name)
                _BACKENDS[name] = found
    return found
