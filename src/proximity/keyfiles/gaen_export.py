"""GAEN diagnosis-key export files (export.zip = export.bin + export.sig): read, verify, write.

Parsing is pure (bytes in, values out); :func:`load_export` and :func:`stream_exports` are the thin
edges that read files. A file is accepted only when its signature verifies under a key the caller
trusts (ECDSA P-256 over all of export.bin): a trusted key given with an id (and maybe a version) is
tried against the signatures whose info names it; a key given without id is tried against every
signature. A bare export.bin, an unsigned or a badly signed file is refused unless the caller passes
``verify=False``, which marks the keys unverified. Malformed keys inside a file are skipped and counted.
"""

from __future__ import annotations

import io
import lzma
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, methodcaller
from pathlib import Path
from typing import overload

import numpy as np
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError
from numpy.typing import NDArray

from proximity.errors import KeyFileSignatureError, MalformedKeyFileError
from proximity.keyfiles import export_pb2 as pb
from proximity.keyfiles.gaen_wire import WireKeys, decode_keys
from proximity.schemes.gaen import ENIN_SECONDS, MAX_ENIN, TEK_LENGTH, TEK_ROLLING_PERIOD
from proximity.schemes.published import NO_ONSET, DiagnosisKey, KeyBatch, ReportType
from proximity.times import LATEST_TIME

__all__ = [
    "EXPORT_HEADER",
    "ExportFile",
    "ExportStream",
    "TrustedKey",
    "generate_signing_key",
    "load_export",
    "load_signing_key",
    "looks_like_export",
    "parse_export",
    "parse_export_bytes",
    "parse_export_zip",
    "signing_key_pem",
    "stream_exports",
    "write_export",
]

EXPORT_HEADER = b"EK Export v1    "
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_SHA512 = "1.2.840.10045.4.3.4"
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    ECDSA_SHA256: hashes.SHA256,
    ECDSA_SHA512: hashes.SHA512,
}
MAX_ENTRY_BYTES = 256 * 1024 * 1024  # refuse zip entries bigger than this (a zip bomb is not an export)
# Keys whose interval ends after year 9998 are skipped as malformed: no day of theirs can be printed.
LATEST_INTERVAL = LATEST_TIME // ENIN_SECONDS
_REPORT_RANGE = (min(ReportType), max(ReportType))  # the format's report types are 0..5, no gaps
if len(ReportType) != _REPORT_RANGE[1] - _REPORT_RANGE[0] + 1:
    raise AssertionError("ReportType values must be contiguous")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    RuntimeError,
    zlib.error,
    ValueError,
    NotImplementedError,
    OSError,
    UnicodeDecodeError,
    lzma.LZMAError,
    struct.error,
)  # fixed, so the same keys give the same bytes


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key the caller trusts; ``key_id``/``version`` None means "any"."""

    public_key: ec.EllipticCurvePublicKey
    key_id: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, ec.EllipticCurvePublicKey) or not isinstance(
            self.public_key.curve, ec.SECP256R1
        ):
            raise TypeError("public_key must be a P-256 (secp256r1) public key")

    @classmethod
    def from_pem(
        cls, pem: bytes, key_id: str | None = None, version: str | None = None, *, source: str = "public key"
    ) -> TrustedKey:
        """A trusted key from a SubjectPublicKeyInfo PEM; ``source`` (e.g. the file) names it in errors.

        GAEN exports are signed with ECDSA P-256: any other key is refused with MalformedKeyFileError.
        """
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise MalformedKeyFileError(source, f"not a PEM public key ({error})") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            kind = type(key).__name__.removeprefix("_").removesuffix("PublicKey") or type(key).__name__
            raise MalformedKeyFileError(source, f"GAEN needs a P-256 (secp256r1) EC public key, got {kind}")
        if not isinstance(key.curve, ec.SECP256R1):
            raise MalformedKeyFileError(
                source, f"GAEN needs a P-256 (secp256r1) EC public key, got curve {key.curve.name}"
            )
        return cls(key, key_id, version)

    def applies_to(self, info: pb.SignatureInfo) -> bool:
        if self.key_id is None:
            return True
        if info.verification_key_id != self.key_id:
            return False
        return self.version is None or info.verification_key_version == self.version


@dataclass(frozen=True, slots=True, eq=False)
class ExportFile:
    """One parsed export: its header fields, its keys and revised keys as batches, and what was skipped."""

    region: str
    start_timestamp: int
    end_timestamp: int
    batch_num: int
    batch_size: int
    keys: KeyBatch
    revised_keys: KeyBatch
    skipped_keys: int
    verified: bool
    signature_key_id: str | None = None
    signature_key_version: str | None = None


def _object_columns(entries: Sequence[pb.TemporaryExposureKey]) -> WireKeys:
    """The general path: the parsed messages' fields, one ``map`` per field."""
    n = len(entries)

    def column(field: str) -> NDArray[np.int64]:
        return np.fromiter(map(attrgetter(field), entries), np.int64, n)

    data = list(map(attrgetter("key_data"), entries))
    lengths = np.fromiter(map(len, data), np.int64, n)
    keys = np.zeros((n, TEK_LENGTH), np.uint8)
    whole = np.flatnonzero(lengths == TEK_LENGTH)
    if whole.size:
        joined = b"".join(data[i] for i in whole.tolist())
        keys[whole] = np.frombuffer(joined, np.uint8).reshape(-1, TEK_LENGTH)
    return WireKeys(
        keys,
        lengths,
        column("rolling_start_interval_number"),
        np.fromiter(map(methodcaller("HasField", "rolling_start_interval_number"), entries), bool, n),
        column("rolling_period"),
        column("transmission_risk_level"),
        column("report_type"),
        column("days_since_onset_of_symptoms"),
        np.fromiter(map(methodcaller("HasField", "days_since_onset_of_symptoms"), entries), bool, n),
    )


def _batch(columns: WireKeys, verified: bool) -> tuple[KeyBatch, int]:
    """The keys that keep the format's rules as a batch, and how many were skipped for breaking one."""
    c = columns
    starts, periods, risks = c.rolling_start_interval_number, c.rolling_period, c.transmission_risk_level
    ok = (
        (c.key_length == TEK_LENGTH)
        & c.has_start
        & (starts >= 0)
        & (starts <= min(MAX_ENIN, LATEST_INTERVAL) - periods + 1)
        & (periods >= 1)
        & (periods <= TEK_ROLLING_PERIOD)
        & (risks >= 0)
        & (risks <= 8)
        & (c.report_type >= _REPORT_RANGE[0])
        & (c.report_type <= _REPORT_RANGE[1])
    )
    kept: NDArray[np.bool_] | slice = slice(None) if ok.all() else ok  # the usual file: no copies
    batch = KeyBatch(
        np.ascontiguousarray(c.key_data[kept]),
        starts[kept],
        periods[kept],
        risks[kept].astype(np.int32),
        c.report_type[kept].astype(np.int32),
        np.where(c.has_onset, c.days_since_onset_of_symptoms, NO_ONSET)[kept].astype(np.int32),
        verified,
    )
    return batch, int(ok.size - ok.sum())


def _verify(
    export_bin: bytes, export_sig: bytes | None, trusted: Sequence[TrustedKey], source: str
) -> tuple[str, str]:
    if export_sig is None:
        raise KeyFileSignatureError(source, "unsigned", "no export.sig: refusing an unsigned file")
    if not trusted:
        raise KeyFileSignatureError(source, "untrusted", "no trusted public key given (pass --pubkey)")
    signatures = pb.TEKSignatureList()
    try:
        signatures.ParseFromString(export_sig)
    except DecodeError:
        raise MalformedKeyFileError(source, "export.sig is not a TEKSignatureList") from None
    if not signatures.signatures:
        raise KeyFileSignatureError(source, "unsigned", "export.sig holds no signature")
    tried = False
    for signature in signatures.signatures:
        info = signature.signature_info
        algorithm = _HASHES.get(info.signature_algorithm or ECDSA_SHA256)
        if algorithm is None:
            continue
        for key in trusted:
            if not key.applies_to(info):
                continue
            tried = True
            try:
                key.public_key.verify(signature.signature, export_bin, ec.ECDSA(algorithm()))
            except InvalidSignature:
                continue
            return info.verification_key_id, info.verification_key_version
    if tried:
        raise KeyFileSignatureError(source, "invalid", "signature does not verify under the trusted key")
    names = ", ".join(
        f"{s.signature_info.verification_key_id}:{s.signature_info.verification_key_version}"
        for s in signatures.signatures
    )
    raise KeyFileSignatureError(source, "untrusted", f"no trusted key matches the file's signers ({names})")


def parse_export(
    export_bin: bytes,
    export_sig: bytes | None,
    trusted: Sequence[TrustedKey] = (),
    *,
    verify: bool = True,
    source: str = "export",
    revised_only: bool = False,
) -> ExportFile:
    """Parse export.bin (and check export.sig unless ``verify`` is False). ``revised_only`` leaves the
    keys undecoded (an empty batch; ``skipped_keys`` counts revised keys only): a first pass for
    revisions need not pay for the keys."""
    if not isinstance(export_bin, bytes | bytearray | memoryview):
        raise TypeError(f"export_bin must be bytes, got {type(export_bin).__name__}")
    export_bin = bytes(export_bin)
    if export_bin[: len(EXPORT_HEADER)] != EXPORT_HEADER:
        raise MalformedKeyFileError(
            source, f"export.bin must start with the 16-byte header {EXPORT_HEADER!r}"
        )
    key_id = version = None
    if verify:
        key_id, version = _verify(export_bin, export_sig, trusted, source)
    message = pb.TemporaryExposureKeyExport()
    try:
        message.ParseFromString(export_bin[len(EXPORT_HEADER) :])
    except DecodeError:
        raise MalformedKeyFileError(source, "export.bin does not hold a TemporaryExposureKeyExport") from None
    # A first pass for revisions reads the few revised keys from the parsed message: walking the wire
    # for them would visit every key entry too.
    wire = None if revised_only else decode_keys(export_bin[len(EXPORT_HEADER) :])
    if wire is None:  # something the column decoder does not expect: the parsed objects, field by field
        wire = (
            _object_columns(message.keys[:0] if revised_only else message.keys),
            _object_columns(message.revised_keys),
        )
    keys, skipped = _batch(wire[0], verify)
    revised, skipped_revised = _batch(wire[1], verify)
    return ExportFile(
        region=message.region,
        start_timestamp=message.start_timestamp,
        end_timestamp=message.end_timestamp,
        batch_num=message.batch_num,
        batch_size=message.batch_size,
        keys=keys,
        revised_keys=revised,
        skipped_keys=skipped + skipped_revised,
        verified=verify,
        signature_key_id=key_id,
        signature_key_version=version,
    )


def _entry(archive: zipfile.ZipFile, name: str, source: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_ENTRY_BYTES:
        raise MalformedKeyFileError(source, f"{name} is {info.file_size} bytes, more than {MAX_ENTRY_BYTES}")
    return archive.read(info)


def parse_export_zip(
    data: bytes,
    trusted: Sequence[TrustedKey] = (),
    *,
    verify: bool = True,
    source: str = "export.zip",
    revised_only: bool = False,
) -> ExportFile:
    """Parse an export.zip held in memory."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            export_bin = _entry(archive, "export.bin", source)
            export_sig = _entry(archive, "export.sig", source)
    except _ZIP_ERRORS as error:
        # a damaged or hostile zip fails in many ways inside zipfile and its decompressors: encrypted
        # entries (RuntimeError), bad deflate data (zlib.error), seeks before the start (ValueError),
        # unknown methods (NotImplementedError), bad bz2/lzma streams (OSError), non-UTF-8 names
        raise MalformedKeyFileError(
            source, f"not a readable zip ({type(error).__name__}: {str(error)[:200]})"
        ) from None
    if export_bin is None:
        raise MalformedKeyFileError(source, "the zip holds no export.bin")
    return parse_export(
        export_bin, export_sig, trusted, verify=verify, source=source, revised_only=revised_only
    )


def parse_export_bytes(
    data: bytes,
    trusted: Sequence[TrustedKey] = (),
    *,
    verify: bool = True,
    source: str = "export",
    revised_only: bool = False,
) -> ExportFile:
    """An export.zip or a bare export.bin (a bare one has no signature: only with ``verify=False``)."""
    if data[:4] == b"PK\x03\x04":
        return parse_export_zip(data, trusted, verify=verify, source=source, revised_only=revised_only)
    if data[: len(EXPORT_HEADER)] == EXPORT_HEADER:
        if verify:
            raise KeyFileSignatureError(
                source, "unsigned", "a bare export.bin carries no signature; refusing it (use --no-verify)"
            )
        return parse_export(data, None, verify=False, source=source, revised_only=revised_only)
    raise MalformedKeyFileError(source, "neither an export.zip nor an export.bin")


def load_export(
    path: str | os.PathLike[str],
    trusted: Sequence[TrustedKey] = (),
    *,
    verify: bool = True,
    revised_only: bool = False,
) -> ExportFile:
    """Read one export file from disk (the edge around :func:`parse_export_bytes`)."""
    data = Path(path).read_bytes()
    return parse_export_bytes(data, trusted, verify=verify, source=str(path), revised_only=revised_only)


@dataclass(eq=False)
class ExportStream:
    """Keys of many export files, one file in memory at a time.

    :meth:`revisions` reads every file's revised keys first (a value for
    :func:`~proximity.matching.gaen.match_gaen`); :meth:`keys` then yields one batch per file, and the
    counters fill up as the files are read.
    """

    paths: Sequence[str | os.PathLike[str]]
    trusted: Sequence[TrustedKey] = ()
    verify: bool = True
    revised: list[KeyBatch] = field(default_factory=list)
    _read: bool = field(default=False, init=False, repr=False)  # revised holds every file's revisions
    files: int = 0
    skipped_keys: int = 0
    total_keys: int = 0

    def keys(self) -> Iterator[KeyBatch]:
        seen: list[KeyBatch] = []  # each file's revised keys, read with its keys
        for path in self.paths:
            export = load_export(path, self.trusted, verify=self.verify)
            self.files += 1
            self.skipped_keys += export.skipped_keys
            self.total_keys += len(export.keys)
            if len(export.revised_keys):
                seen.append(export.revised_keys)
            yield export.keys
        if not self._read:  # every file was read (and verified): the revisions are known
            self.revised, self._read = seen, True

    def revisions(self) -> list[KeyBatch]:
        """Every file's revised keys, in file order: from a completed :meth:`keys` pass, else a first
        pass (each file is read and verified, its keys left undecoded; :meth:`keys` reads it again)."""
        if not self._read:
            self.revised = []
            for path in self.paths:
                export = load_export(path, self.trusted, verify=self.verify, revised_only=True)
                if len(export.revised_keys):
                    self.revised.append(export.revised_keys)
            self._read = True
        return list(self.revised)

    def revision_list(self) -> Sequence[KeyBatch]:
        """:meth:`revisions` as a value read on first use: a matcher that reads it after the keys
        (``match_gaen`` on an encounter log) gets it from the keys' own pass, reading no file twice."""
        return _Revisions(self)


class _Revisions(Sequence[KeyBatch]):
    """An :class:`ExportStream`'s revisions, read when first looked at (the same value either way)."""

    def __init__(self, stream: ExportStream) -> None:
        self._stream = stream
        self._batches: list[KeyBatch] | None = None

    def _value(self) -> list[KeyBatch]:
        if self._batches is None:
            self._batches = self._stream.revisions()
        return self._batches

    def __len__(self) -> int:
        return len(self._value())

    @overload
    def __getitem__(self, index: int) -> KeyBatch: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[KeyBatch]: ...
    def __getitem__(self, index: int | slice) -> KeyBatch | Sequence[KeyBatch]:
        return self._value()[index]


def looks_like_export(head: bytes) -> bool:
    """Cheap sniff on a file's first bytes: a zip (export.zip) or a bare export.bin's header."""
    return head[:4] == b"PK\x03\x04" or head[: len(EXPORT_HEADER)] == EXPORT_HEADER


def stream_exports(
    paths: Sequence[str | os.PathLike[str]], trusted: Sequence[TrustedKey] = (), *, verify: bool = True
) -> ExportStream:
    return ExportStream(paths, trusted, verify)


def _to_proto(key: DiagnosisKey) -> pb.TemporaryExposureKey:
    entry = pb.TemporaryExposureKey(
        key_data=key.tek.key_data,
        transmission_risk_level=key.transmission_risk_level,
        rolling_start_interval_number=key.tek.rolling_start_interval_number,
        report_type=int(key.report_type),  # type: ignore[arg-type]
    )
    if key.tek.rolling_period != TEK_ROLLING_PERIOD:  # the reference server omits the default
        entry.rolling_period = key.tek.rolling_period
    if key.days_since_onset_of_symptoms is not None:
        entry.days_since_onset_of_symptoms = key.days_since_onset_of_symptoms
    return entry


def _fake_keys(
    real: Sequence[DiagnosisKey], count: int, start_timestamp: int, random_bytes: Callable[[int], bytes]
) -> list[DiagnosisKey]:
    """Random keys shaped like the real ones (same starts, periods, reports), to hide the batch size."""
    from proximity.schemes.gaen import TemporaryExposureKey

    fakes: list[DiagnosisKey] = []
    midnight_interval = (start_timestamp // 600) // TEK_ROLLING_PERIOD * TEK_ROLLING_PERIOD
    for i in range(count):
        if real:
            like = real[int.from_bytes(random_bytes(4), "big") % len(real)]
            tek = TemporaryExposureKey(
                random_bytes(TEK_LENGTH), like.tek.rolling_start_interval_number, like.tek.rolling_period
            )
            fakes.append(
                DiagnosisKey(
                    tek, like.transmission_risk_level, like.report_type, like.days_since_onset_of_symptoms
                )
            )
        else:
            fakes.append(
                DiagnosisKey(
                    TemporaryExposureKey(
                        random_bytes(TEK_LENGTH), midnight_interval - i % 14 * TEK_ROLLING_PERIOD
                    )
                )
            )
    return fakes


def write_export(
    keys: Sequence[DiagnosisKey],
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    key_id: str,
    key_version: str = "v1",
    region: str = "",
    start_timestamp: int,
    end_timestamp: int,
    revised_keys: Sequence[DiagnosisKey] = (),
    pad_to: int = 0,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """A signed export.zip (as bytes) holding ``keys`` sorted by key bytes, padded to ``pad_to`` keys.

    Times are the caller's (``start_timestamp``/``end_timestamp``): nothing here reads the clock.
    """
    if not isinstance(signing_key, ec.EllipticCurvePrivateKey) or not isinstance(
        signing_key.curve, ec.SECP256R1
    ):
        raise TypeError("signing_key must be a P-256 private key")
    padded = list(keys) + _fake_keys(keys, max(0, pad_to - len(keys)), start_timestamp, random_bytes)
    info = pb.SignatureInfo(
        verification_key_version=key_version, verification_key_id=key_id, signature_algorithm=ECDSA_SHA256
    )
    message = pb.TemporaryExposureKeyExport(
        start_timestamp=start_timestamp,
        end_timestamp=end_timestamp,
        region=region,
        batch_num=1,
        batch_size=1,
        signature_infos=[info],
        keys=[_to_proto(k) for k in sorted(padded, key=lambda k: k.tek.key_data)],
        revised_keys=[_to_proto(k) for k in sorted(revised_keys, key=lambda k: k.tek.key_data)],
    )
    export_bin = EXPORT_HEADER + message.SerializeToString()
    signature = signing_key.sign(export_bin, ec.ECDSA(hashes.SHA256()))
    signatures = pb.TEKSignatureList(
        signatures=[pb.TEKSignature(signature_info=info, batch_num=1, batch_size=1, signature=signature)]
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in (("export.bin", export_bin), ("export.sig", signatures.SerializeToString())):
            archive.writestr(
                zipfile.ZipInfo(name, date_time=_ZIP_TIME), payload, compress_type=zipfile.ZIP_DEFLATED
            )
    return buffer.getvalue()


def generate_signing_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key pair for signing exports."""
    return ec.generate_private_key(ec.SECP256R1())


def signing_key_pem(key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    """(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def load_signing_key(pem: bytes, source: str = "signing key") -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise MalformedKeyFileError(source, f"not an unencrypted PEM private key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedKeyFileError(source, "not a P-256 private key")
    return key
