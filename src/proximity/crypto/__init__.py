"""Crypto for every scheme: one protocol of batch primitives, two backends, one switch.

:func:`crypto_backend` returns the backend ``PROXIMITY_MATCH_BACKEND`` chooses (``auto`` | ``c`` |
``python`` | ``libcrypto`` | ``portable``), made once per process: see :mod:`proximity.crypto.backend`
(the protocol) and :mod:`proximity.crypto.switch` (the switch).
"""

from proximity.crypto.backend import CHOICES, ENV_VAR, CryptoBackend, IdIndex
from proximity.crypto.switch import crypto_backend, resolve_backend

__all__ = ["CHOICES", "ENV_VAR", "CryptoBackend", "IdIndex", "crypto_backend", "resolve_backend"]
