"""Google/Apple Exposure Notification crypto, v1.2: TEK -> RPIK/AEMK -> RPIs and AEMs.

The crypto is written once, over batches of keys, as a composition of the backend's primitives
(:mod:`proximity.crypto`): RPIK/AEMK are HKDF-SHA256 of the TEKs; all RPIs of a key are one AES-128-ECB
pass over the 144 PaddedData blocks of its start, in which only the interval bytes differ, as Google's
production matcher does; an AEM's keystream is AES-128-CTR with the RPI as counter block. The single-key
functions call the same batch functions with n = 1, and matching (:mod:`proximity.matching.gaen`) too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from proximity.crypto import CryptoBackend, crypto_backend
from proximity.errors import InvalidKeyError, InvalidLengthError, InvalidMetadataError, NoKeyForTimeError
from proximity.schemes.base import EphemeralId, IdBatch, require_bytes
from proximity.times import SECONDS_PER_DAY, _check_finite

__all__ = [
    "AEM_LENGTH",
    "ENIN_SECONDS",
    "GAEN",
    "METADATA_LENGTH",
    "RPI_LENGTH",
    "TEK_LENGTH",
    "TEK_ROLLING_PERIOD",
    "GaenScheme",
    "Metadata",
    "TemporaryExposureKey",
    "aem_keystreams",
    "aems_of_rpis",
    "decrypt_aem",
    "derive_aemk",
    "derive_aemks",
    "derive_rpik",
    "derive_rpiks",
    "en_interval_number",
    "encrypt_aem",
    "interval_start",
    "padded_blocks",
    "rpi_inputs",
    "rpis",
    "rpis_of_keys",
]

ENIN_SECONDS = 600
TEK_ROLLING_PERIOD = 144
TEK_LENGTH = 16
RPI_LENGTH = 16
AEM_LENGTH = 4
METADATA_LENGTH = 4
MAX_ENIN = 2**32 - 1

_INFO_RPIK = b"EN-RPIK"
_INFO_AEMK = b"EN-AEMK"
_RPI_TEMPLATE = np.frombuffer(b"EN-RPI" + bytes(10), dtype=np.uint8)  # PaddedData, interval bytes zero
_OFFSETS = np.arange(TEK_ROLLING_PERIOD, dtype=np.int64)


def en_interval_number(at: float) -> int:
    """ENIntervalNumber: the 10-minute interval containing unix time ``at``."""
    _check_finite(at)
    return int(at // ENIN_SECONDS)


def interval_start(enin: int) -> int:
    """Unix seconds at which interval ``enin`` begins."""
    return enin * ENIN_SECONDS


# --- the batch crypto (every path goes through these) ---------------------------------------------


def _rows(data: NDArray[np.uint8] | bytes, width: int) -> NDArray[np.uint8]:
    return np.frombuffer(data, np.uint8).reshape(-1, width) if isinstance(data, bytes) else data


def derive_rpiks(teks: NDArray[np.uint8], crypto: CryptoBackend | None = None) -> NDArray[np.uint8]:
    """RPIK = HKDF-SHA256(TEK, salt none, info "EN-RPIK", 16) of every (n, 16) TEK row."""
    return (crypto or crypto_backend()).hkdf_sha256(teks, _INFO_RPIK, 16)


def derive_aemks(teks: NDArray[np.uint8], crypto: CryptoBackend | None = None) -> NDArray[np.uint8]:
    """AEMK = HKDF-SHA256(TEK, salt none, info "EN-AEMK", 16) of every (n, 16) TEK row."""
    return (crypto or crypto_backend()).hkdf_sha256(teks, _INFO_AEMK, 16)


def padded_blocks(starts: NDArray[np.int64], count: int = TEK_ROLLING_PERIOD) -> NDArray[np.uint8]:
    """PaddedData of the ``count`` intervals from each start, (u, count, 16); interval numbers wrap as
    uint32."""
    u = int(starts.shape[0])
    blocks = np.empty((u, count, 16), dtype=np.uint8)
    blocks[:] = _RPI_TEMPLATE
    intervals = (np.asarray(starts, np.int64)[:, None] + _OFFSETS[:count]).astype("<u4")
    blocks[:, :, 12:16] = intervals.view(np.uint8).reshape(u, count, 4)
    return blocks


def rpi_inputs(
    teks: NDArray[np.uint8], starts: NDArray[np.int64], crypto: CryptoBackend | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.intp]]:
    """The AES-128-ECB job that gives every key's 144 RPIs: (RPIKs, PaddedData rows, row of each key).

    Keys sharing a start (most of them: midnight) share their row of blocks.
    """
    unique_starts, which = _distinct_starts(np.asarray(starts, np.int64).reshape(-1))
    return derive_rpiks(teks, crypto), padded_blocks(unique_starts), which


def _distinct_starts(starts: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """``np.unique(starts, return_inverse=True)`` without a sort when the starts span a few weeks of
    intervals (an export file's keys, 14 days: a table lookup instead)."""
    if starts.size and int(starts.max()) - int(starts.min()) < 1 << 16:
        low = int(starts.min())
        offsets = starts - low
        present = np.zeros(int(offsets.max()) + 1, np.bool_)
        present[offsets] = True
        rank = np.cumsum(present, dtype=np.intp) - 1
        return np.flatnonzero(present).astype(np.int64) + low, rank[offsets]
    unique_starts, which = np.unique(starts, return_inverse=True)
    return unique_starts, which.reshape(-1).astype(np.intp)


def rpis_of_keys(
    teks: NDArray[np.uint8], starts: NDArray[np.int64], crypto: CryptoBackend | None = None
) -> NDArray[np.uint8]:
    """The 144 RPIs of every TEK from its start interval, as (n, 144, 16)."""
    crypto = crypto or crypto_backend()
    return crypto.aes_ecb(*rpi_inputs(teks, starts, crypto))


def aem_keystreams(
    aemks: NDArray[np.uint8], rpi_rows: NDArray[np.uint8], crypto: CryptoBackend | None = None
) -> NDArray[np.uint8]:
    """The 4 keystream bytes that encrypt the metadata beside each RPI: AES-128-CTR(AEMK, counter = RPI)
    over 4 bytes uses one keystream block, AES(AEMK, RPI). ``aemks`` (n, 16), ``rpi_rows`` (n, k, 16):
    key ``i`` under its k RPIs, one ECB pass per key; returns (n, k, 4)."""
    stream = (crypto or crypto_backend()).aes_ecb(aemks, np.ascontiguousarray(rpi_rows, np.uint8))
    return np.ascontiguousarray(stream[:, :, :AEM_LENGTH])


# --- one key at a time: the same functions with n = 1 -----------------------------------------------


def derive_rpik(tek: bytes) -> bytes:
    """RPIK = HKDF-SHA256(TEK, salt none, info "EN-RPIK", 16)."""
    return derive_rpiks(_rows(require_bytes("TEK", tek, TEK_LENGTH), TEK_LENGTH)).tobytes()


def derive_aemk(tek: bytes) -> bytes:
    """AEMK = HKDF-SHA256(TEK, salt none, info "EN-AEMK", 16)."""
    return derive_aemks(_rows(require_bytes("TEK", tek, TEK_LENGTH), TEK_LENGTH)).tobytes()


def rpis(rpik: bytes, first_interval: int, count: int = TEK_ROLLING_PERIOD) -> NDArray[np.uint8]:
    """RPIs of intervals ``first_interval .. first_interval+count-1`` as a (count, 16) array, one AES call."""
    rpik = require_bytes("RPIK", rpik, 16)
    if not 1 <= count <= TEK_ROLLING_PERIOD:
        raise InvalidKeyError(f"count must be 1..{TEK_ROLLING_PERIOD}, got {count}")
    if not 0 <= first_interval <= MAX_ENIN - count + 1:
        raise InvalidKeyError(f"interval numbers must fit in uint32, got {first_interval}+{count}")
    blocks = padded_blocks(np.array([first_interval], np.int64), count)
    out: NDArray[np.uint8] = crypto_backend().aes_ecb(_rows(rpik, 16), blocks)[0]
    return out


def encrypt_aem(aemk: bytes, rpi: bytes, metadata: bytes) -> bytes:
    """AEM = AES-128-CTR(AEMK, counter block = RPI, metadata)."""
    aemk = require_bytes("AEMK", aemk, 16)
    rpi = require_bytes("RPI", rpi, RPI_LENGTH)
    metadata = require_bytes("metadata", metadata, METADATA_LENGTH)
    stream = aem_keystreams(_rows(aemk, 16), _rows(rpi, RPI_LENGTH)[None])[0, 0]
    return bytes(stream ^ np.frombuffer(metadata, np.uint8))


def decrypt_aem(aemk: bytes, rpi: bytes, aem: bytes) -> bytes:
    """Metadata from an AEM: CTR mode is its own inverse."""
    return encrypt_aem(aemk, rpi, require_bytes("AEM", aem, AEM_LENGTH))


def aems_of_rpis(aemk: bytes, rpi_batch: NDArray[np.uint8], metadata: bytes) -> NDArray[np.uint8]:
    """AEMs of many RPIs under one AEMK (one AES pass): the keystreams XOR the metadata; it also decrypts."""
    aemk = require_bytes("AEMK", aemk, 16)
    metadata = require_bytes("metadata", metadata, METADATA_LENGTH)
    if rpi_batch.ndim != 2 or rpi_batch.shape[1] != RPI_LENGTH:
        raise InvalidLengthError("each RPI", RPI_LENGTH, int(rpi_batch.shape[-1]))
    keystream: NDArray[np.uint8] = aem_keystreams(_rows(aemk, 16), rpi_batch[None])[0]
    return keystream ^ np.frombuffer(metadata, dtype=np.uint8)


# (field, lowest, highest, what is allowed): the AEM's signed TX power byte and its 2-bit fields
_METADATA_FIELDS = (
    ("tx_power", -128, 127, "a signed byte (-128..127 dBm)"),
    ("calibration_confidence", 0, 3, "0..3 (2 bits)"),
    ("major_version", 0, 3, "0..3 (2 bits)"),
    ("minor_version", 0, 3, "0..3 (2 bits)"),
)


@dataclass(frozen=True, slots=True)
class Metadata:
    """The 4 bytes an AEM encrypts: version, TX power (signed dBm), calibration confidence."""

    tx_power: int
    calibration_confidence: int = 0
    major_version: int = 1
    minor_version: int = 0

    def __post_init__(self) -> None:
        for name, low, high, expected in _METADATA_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if not low <= value <= high:
                raise InvalidMetadataError(name, value, expected)

    def to_bytes(self) -> bytes:
        version = (self.major_version << 6) | (self.minor_version << 4) | (self.calibration_confidence << 2)
        return bytes([version, self.tx_power & 0xFF, 0, 0])

    @classmethod
    def from_bytes(cls, data: bytes) -> Metadata:
        data = require_bytes("metadata", data, METADATA_LENGTH)
        version = data[0]
        tx_power = data[1] - 256 if data[1] > 127 else data[1]
        return cls(
            tx_power=tx_power,
            calibration_confidence=(version >> 2) & 0b11,
            major_version=version >> 6,
            minor_version=(version >> 4) & 0b11,
        )


@dataclass(frozen=True, slots=True)
class TemporaryExposureKey:
    """A TEK with the intervals it covers: ``[rolling_start_interval_number, + rolling_period)``.

    Keys usually start at UTC midnight (a multiple of 144) but may start at any interval: the first key
    after install, or after a key reset, does, and real export files hold such keys.
    """

    key_data: bytes
    rolling_start_interval_number: int
    rolling_period: int = TEK_ROLLING_PERIOD

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_data", require_bytes("TEK", self.key_data, TEK_LENGTH))
        if not 0 <= self.rolling_start_interval_number <= MAX_ENIN:
            raise InvalidKeyError(
                f"rolling_start_interval_number must fit in uint32, got {self.rolling_start_interval_number}"
            )
        if not 1 <= self.rolling_period <= TEK_ROLLING_PERIOD:
            raise InvalidKeyError(
                f"rolling_period must be 1..{TEK_ROLLING_PERIOD}, got {self.rolling_period}"
            )
        if self.rolling_start_interval_number + self.rolling_period - 1 > MAX_ENIN:
            raise InvalidKeyError("the key's last interval number does not fit in uint32")

    @classmethod
    def generate(
        cls,
        at: float,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        until_midnight: bool = True,
    ) -> TemporaryExposureKey:
        """A fresh key from a CSPRNG, starting at the interval containing ``at``.

        With ``until_midnight`` (as phones do) it rolls at the next UTC midnight, so a key generated
        mid-day has a shorter rolling period; otherwise it lasts a full 144 intervals.
        """
        start = en_interval_number(at)
        period = TEK_ROLLING_PERIOD - start % TEK_ROLLING_PERIOD if until_midnight else TEK_ROLLING_PERIOD
        return cls(random_bytes(TEK_LENGTH), start, period)

    @property
    def start(self) -> int:
        """Unix seconds at which the key's first interval begins."""
        return interval_start(self.rolling_start_interval_number)

    @property
    def end(self) -> int:
        """Unix seconds at which the key's last interval ends (exclusive)."""
        return interval_start(self.rolling_start_interval_number + self.rolling_period)

    def covers(self, at: float) -> bool:
        return self.start <= at < self.end

    def __repr__(self) -> str:
        # Never print secret key material in logs or tracebacks.
        return (
            f"TemporaryExposureKey(key_data=<{TEK_LENGTH} bytes>, "
            f"rolling_start_interval_number={self.rolling_start_interval_number}, "
            f"rolling_period={self.rolling_period})"
        )


class GaenScheme:
    """GAEN as a :class:`~proximity.schemes.base.RotatingIdScheme` over :class:`TemporaryExposureKey`."""

    name = "gaen"
    id_length = RPI_LENGTH
    slot_seconds = ENIN_SECONDS
    keys_per_day = SECONDS_PER_DAY // ENIN_SECONDS

    def ids_of_key(self, key: TemporaryExposureKey) -> IdBatch:
        first = key.rolling_start_interval_number
        batch = rpis(derive_rpik(key.key_data), first, key.rolling_period)
        starts = np.arange(first, first + key.rolling_period, dtype=np.int64) * ENIN_SECONDS
        return IdBatch(self.name, batch, starts, starts + ENIN_SECONDS)

    def id_at(self, key: TemporaryExposureKey, at: float) -> EphemeralId:
        if not key.covers(at):
            raise NoKeyForTimeError(self.name, at, f"the key covers [{key.start}, {key.end})")
        enin = en_interval_number(at)
        value = rpis(derive_rpik(key.key_data), enin, 1)[0].tobytes()
        return EphemeralId(self.name, value, interval_start(enin), interval_start(enin + 1))

    def aems_of_key(self, key: TemporaryExposureKey, ids: IdBatch, metadata: Metadata) -> NDArray[np.uint8]:
        """The AEMs broadcast beside ``ids`` (from :meth:`ids_of_key`) under ``metadata``."""
        return aems_of_rpis(derive_aemk(key.key_data), ids.ids, metadata.to_bytes())


GAEN = GaenScheme()
