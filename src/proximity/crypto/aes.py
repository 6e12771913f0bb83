"""AES-ECB for many keys at once (AES-128 or -256 by key width), for the Python reference backend.

Matching derives 144 RPIs from every published key, so the cost that dominates is setting up a cipher
per key. Two implementations do the same job:

* ``LibcryptoEcb`` binds the system libcrypto (OpenSSL 3) through cffi's ABI mode and reuses a
  cipher context (one per thread and process), re-keyed per key: no cipher object is built per key.
* ``PortableEcb`` uses ``cryptography``'s public API: one cipher object per key. Always available.

The reference backend (:mod:`proximity.crypto.reference`) takes the fast one when it loads and passes
a known-answer self test, and the portable one otherwise or when ``PROXIMITY_MATCH_BACKEND=portable``
(the one crypto switch, :mod:`proximity.crypto`). Both are tested against the same vectors.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import threading
from typing import Any, Protocol

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

__all__ = ["EcbBackend", "LibcryptoEcb", "PortableEcb", "available_backends"]

_CDEF = """
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;
EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx);
const EVP_CIPHER *EVP_aes_128_ecb(void);
const EVP_CIPHER *EVP_aes_256_ecb(void);
int EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, void *impl,
                       const unsigned char *key, const unsigned char *iv);
int EVP_EncryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
                      const unsigned char *in, int inl);
int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX *c, int pad);
"""

# FIPS-197 appendix C.1: AES-128 known answer used as the fast backend's self test.
_KAT_KEY = bytes(range(16))
_KAT_PLAIN = bytes.fromhex("00112233445566778899aabbccddeeff")
_KAT_CIPHER = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")


class EcbBackend(Protocol):
    """``encrypt_rows(keys, blocks, rows)``: key ``i`` encrypts ``blocks[rows[i]]``.

    ``keys`` is (n, 16) uint8 (AES-128) or (n, 32) uint8 (AES-256), ``blocks`` (u, b, 16) uint8 and
    ``rows`` (n,) indexes into ``blocks`` (None: ``rows[i] = i``, so u = n). Keys sharing a start share
    their plaintext row. Returns (n, b, 16).
    """

    @property
    def name(self) -> str: ...

    def encrypt_rows(
        self, keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]: ...


def _check(
    keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None
) -> tuple[int, int, NDArray[np.intp]]:
    if keys.ndim != 2 or keys.shape[1] not in (16, 32) or keys.dtype != np.uint8:
        raise ValueError(f"keys must be an (n, 16) or (n, 32) uint8 array, got {keys.shape} {keys.dtype}")
    n = int(keys.shape[0])
    if blocks.ndim != 3 or blocks.shape[2] != 16 or blocks.dtype != np.uint8:
        raise ValueError(f"blocks must be a (u, b, 16) uint8 array, got {blocks.shape} {blocks.dtype}")
    if rows is None:
        if blocks.shape[0] != n:
            raise ValueError(f"without rows, blocks must hold one row per key ({n}), got {blocks.shape[0]}")
        rows = np.arange(n, dtype=np.intp)
    rows = np.asarray(rows, dtype=np.intp)
    if rows.shape != (n,) or (n and (rows.min() < 0 or rows.max() >= blocks.shape[0])):
        raise ValueError("rows must hold one valid index into blocks per key")
    return n, int(blocks.shape[1]) * 16, rows


class PortableEcb:
    """One ``cryptography`` cipher per key: portable, ~3-5 µs of set-up per key."""

    name = "cryptography"

    def encrypt_rows(
        self, keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        n, row, rows = _check(keys, blocks, rows)
        plain = [blocks[r].tobytes() for r in range(blocks.shape[0])]
        key_bytes = np.ascontiguousarray(keys).tobytes()
        width = int(keys.shape[1])
        out = bytearray(n * row + 15)  # update_into wants a block's slack past the end
        view = memoryview(out)
        for i, r in enumerate(rows.tolist()):
            key = key_bytes[width * i : width * (i + 1)]
            encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
            encryptor.update_into(plain[r], view[i * row : (i + 1) * row + 15])
        return np.frombuffer(out, dtype=np.uint8, count=n * row).reshape(n, row // 16, 16)


def _open_libcrypto(ffi: Any) -> tuple[Any, str]:
    # The usual names first (no subprocess); find_library (which may run ldconfig) only as a fallback.
    for name in ("libcrypto.so.3", "libcrypto.3.dylib", "libcrypto.so"):
        try:
            return ffi.dlopen(name), name
        except OSError:
            continue
    path = ctypes.util.find_library("crypto")
    if path is None:
        raise OSError("no system libcrypto found")
    return ffi.dlopen(path), path


class LibcryptoEcb:
    """The system libcrypto through cffi, one reused EVP context re-keyed per key.

    cffi releases the GIL during each libcrypto call, so a context shared by threads would be re-keyed
    under another thread's feet: every thread (and every forked process) gets its own context, freed
    when the thread ends or the object is collected.

    Raises OSError (or ImportError) from the constructor when libcrypto or cffi is unavailable.
    """

    name = "libcrypto"

    def __init__(self) -> None:
        import cffi  # imported here: the portable backend must not need it

        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        lib, path = _open_libcrypto(ffi)
        self._ffi = ffi
        self._lib = lib
        self._local = threading.local()
        self._context(16)
        self._context(32)
        probe = np.frombuffer(_KAT_PLAIN, dtype=np.uint8).reshape(1, 1, 16)
        key = np.frombuffer(_KAT_KEY, dtype=np.uint8).reshape(1, 16)
        if self.encrypt_rows(key, probe).tobytes() != _KAT_CIPHER:
            raise OSError(f"{path} failed the AES-128 known-answer test")

    def __reduce__(self) -> tuple[type[LibcryptoEcb], tuple[()]]:
        # cffi handles do not pickle: a spawned worker binds libcrypto afresh.
        return LibcryptoEcb, ()

    def _context(self, width: int) -> Any:
        # One context per thread and key width; and one made before fork() must not be used by the
        # child (the forking thread's local survives the fork), so it is keyed by the process id too.
        local, pid = self._local, os.getpid()
        if getattr(local, "pid", None) != pid:
            local.contexts, local.pid = {}, pid
        ctx = local.contexts.get(width)
        if ctx is None:
            lib, ffi = self._lib, self._ffi
            cipher = lib.EVP_aes_128_ecb() if width == 16 else lib.EVP_aes_256_ecb()
            ctx = ffi.gc(lib.EVP_CIPHER_CTX_new(), lib.EVP_CIPHER_CTX_free)
            if ctx == ffi.NULL or lib.EVP_EncryptInit_ex(ctx, cipher, ffi.NULL, bytes(width), ffi.NULL) != 1:
                raise OSError(f"libcrypto could not set up an AES-{8 * width}-ECB context")
            lib.EVP_CIPHER_CTX_set_padding(ctx, 0)
            local.contexts[width] = ctx
        return ctx

    def encrypt_rows(
        self, keys: NDArray[np.uint8], blocks: NDArray[np.uint8], rows: NDArray[np.intp] | None = None
    ) -> NDArray[np.uint8]:
        n, row, rows = _check(keys, blocks, rows)
        keys = np.ascontiguousarray(keys)
        data = np.ascontiguousarray(blocks)
        out = np.empty((n, row // 16, 16), dtype=np.uint8)
        offsets = (rows * row).tolist()
        width = int(keys.shape[1])
        ffi, ctx = self._ffi, self._context(width)
        init, update, null = self._lib.EVP_EncryptInit_ex, self._lib.EVP_EncryptUpdate, ffi.NULL
        key_ptr = ffi.cast("unsigned char *", keys.ctypes.data)
        in_ptr = ffi.cast("unsigned char *", data.ctypes.data)
        out_ptr = ffi.cast("unsigned char *", out.ctypes.data)
        written = ffi.new("int *")
        failures = 0
        for i in range(n):
            failures += init(ctx, null, null, key_ptr + width * i, null) != 1
            failures += update(ctx, out_ptr + row * i, written, in_ptr + offsets[i], row) != 1
        if failures:
            raise OSError(f"libcrypto AES-ECB failed {failures} times")
        return out


def available_backends() -> list[EcbBackend]:
    """Every backend that loads here, fastest first."""
    found: list[EcbBackend] = []
    with contextlib.suppress(OSError, ImportError, AttributeError):
        found.append(LibcryptoEcb())
    found.append(PortableEcb())
    return found
