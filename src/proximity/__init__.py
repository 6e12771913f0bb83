"""proximity: privacy-preserving BLE proximity contact tracing.

Rotating-ID schemes (GAEN v1.2, Bluezone), their BLE payloads and the device's key ring. The core is
pure (no I/O, no bleak, sqlite3, dbus or asyncio); adapters live at the edges.

Note: the unrelated PyPI package ``proximity`` uses the same import name; this one is distributed as
``proximity-tracing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proximity.broadcast import Broadcast, bluezone_broadcasts, broadcasts_of, gaen_broadcasts
    from proximity.errors import (
        BackendUnavailableError,
        BluetoothUnavailableError,
        BtsnoopError,
        CalibrationError,
        CaptureFormatError,
        EncounterLogBusyError,
        EncounterLogCorruptError,
        EncounterLogError,
        EncounterLogVersionError,
        EstimationParameterError,
        FileWriteError,
        InvalidBatchError,
        InvalidKeyError,
        InvalidLengthError,
        InvalidMetadataError,
        InvalidTimeError,
        KeyFileError,
        KeyFileSignatureError,
        KeyRingCorruptError,
        KeyRingError,
        KeyRingNotFoundError,
        KeyServerConfigError,
        KeyServerError,
        MalformedKeyFileError,
        MalformedPayloadError,
        NoKeyForTimeError,
        NotAKeyRingError,
        ObservationsFileError,
        PayloadTypeError,
        ProximityError,
        RecordingFormatError,
        ReplayError,
        ResourceLimitError,
    )
    from proximity.estimation import (
        BatchVerdicts,
        ChannelModel,
        EstimationSettings,
        Verdict,
        estimate,
        estimate_batch,
        estimate_contact,
        estimator_names,
        resolve_model,
        verdict,
    )
    from proximity.keyfiles import (
        ExportFile,
        TrustedKey,
        dump_records,
        generate_signing_key,
        load_export,
        load_records,
        parse_export_bytes,
        parse_records,
        stream_exports,
        write_export,
    )
    from proximity.keyring import (
        KeyRing,
        KeyRings,
        KeyRingSettings,
        default_keyring_path,
        load_keyring,
        resolve_keyring_path,
        save_keyring,
        wipe_keyring,
    )
    from proximity.matching import (
        DayMatch,
        DiagnosisKey,
        KeyBatch,
        KeyMatch,
        ObservedIdIndex,
        PreparedKeys,
        ReportType,
        group_by_day,
        match_bluezone,
        match_dp3t,
        match_gaen,
    )
    from proximity.payloads import (
        Advert,
        BluezAdvertisement,
        BluezoneAdvert,
        GaenAdvert,
        MalformedAdvertisingDataError,
        decode_ad_bytes,
        decode_bleak,
    )
    from proximity.schemes import (
        BLUEZONE,
        DP3T,
        GAEN,
        BluezoneBaseKey,
        BluezoneDailyKey,
        BluezoneScheme,
        Dp3tDayKey,
        Dp3tScheme,
        EphemeralId,
        GaenScheme,
        IdBatch,
        Metadata,
        RotatingIdScheme,
        TemporaryExposureKey,
    )
    from proximity.schemes.registry import SCHEME_NAMES, SchemeRecord, scheme_record
    from proximity.sightings import InvalidSightingError, Observations, Sighting
    from proximity.times import parse_time, utc_midnight

# The names above are imported on first use (PEP 562), so `import proximity` (and every `proximity`
# command, which imports it first) loads only what it touches: `proximity match` never loads the BLE
# payloads or the simulator's estimators. Each name is looked up in these modules, in order.
_MODULES = (
    "proximity.broadcast",
    "proximity.errors",
    "proximity.estimation",
    "proximity.keyfiles",
    "proximity.keyring",
    "proximity.matching",
    "proximity.payloads",
    "proximity.schemes",
    "proximity.schemes.registry",
    "proximity.sightings",
    "proximity.times",
)


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(module_name)
            if hasattr(module, name):
                value = getattr(module, name)
                globals()[name] = value  # found once: later lookups are plain attribute reads
                return value
    raise AttributeError(f"module 'proximity' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "BLUEZONE",
    "DP3T",
    "GAEN",
    "SCHEME_NAMES",
    "Advert",
    "BackendUnavailableError",
    "BatchVerdicts",
    "BluetoothUnavailableError",
    "BluezAdvertisement",
    "BluezoneAdvert",
    "BluezoneBaseKey",
    "BluezoneDailyKey",
    "BluezoneScheme",
    "Broadcast",
    "BtsnoopError",
    "CalibrationError",
    "CaptureFormatError",
    "ChannelModel",
    "DayMatch",
    "DiagnosisKey",
    "Dp3tDayKey",
    "Dp3tScheme",
    "EncounterLogBusyError",
    "EncounterLogCorruptError",
    "EncounterLogError",
    "EncounterLogVersionError",
    "EphemeralId",
    "EstimationParameterError",
    "EstimationSettings",
    "ExportFile",
    "FileWriteError",
    "GaenAdvert",
    "GaenScheme",
    "IdBatch",
    "InvalidBatchError",
    "InvalidKeyError",
    "InvalidLengthError",
    "InvalidMetadataError",
    "InvalidSightingError",
    "InvalidTimeError",
    "KeyBatch",
    "KeyFileError",
    "KeyFileSignatureError",
    "KeyMatch",
    "KeyRing",
    "KeyRingCorruptError",
    "KeyRingError",
    "KeyRingNotFoundError",
    "KeyRingSettings",
    "KeyRings",
    "KeyServerConfigError",
    "KeyServerError",
    "MalformedAdvertisingDataError",
    "MalformedKeyFileError",
    "MalformedPayloadError",
    "Metadata",
    "NoKeyForTimeError",
    "NotAKeyRingError",
    "Observations",
    "ObservationsFileError",
    "ObservedIdIndex",
    "PayloadTypeError",
    "PreparedKeys",
    "ProximityError",
    "RecordingFormatError",
    "ReplayError",
    "ReportType",
    "ResourceLimitError",
    "RotatingIdScheme",
    "SchemeRecord",
    "Sighting",
    "TemporaryExposureKey",
    "TrustedKey",
    "Verdict",
    "__version__",
    "bluezone_broadcasts",
    "broadcasts_of",
    "decode_ad_bytes",
    "decode_bleak",
    "default_keyring_path",
    "dump_records",
    "estimate",
    "estimate_batch",
    "estimate_contact",
    "estimator_names",
    "gaen_broadcasts",
    "generate_signing_key",
    "group_by_day",
    "load_export",
    "load_keyring",
    "load_records",
    "match_bluezone",
    "match_dp3t",
    "match_gaen",
    "parse_export_bytes",
    "parse_records",
    "parse_time",
    "resolve_keyring_path",
    "resolve_model",
    "save_keyring",
    "scheme_record",
    "stream_exports",
    "utc_midnight",
    "verdict",
    "wipe_keyring",
    "write_export",
]
