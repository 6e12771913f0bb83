"""Published key files: GAEN export.zip (signed protobuf), Bluezone daily-key JSON, DP-3T exposee JSON.

Exports load on first use (PEP 562), so reading one format imports only its module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from proximity.keyfiles.bluezone_json import dump_records, load_records, parse_records
    from proximity.keyfiles.dp3t_json import dump_exposees, load_exposees, parse_exposees
    from proximity.keyfiles.gaen_export import (
        ExportFile,
        ExportStream,
        TrustedKey,
        generate_signing_key,
        load_export,
        parse_export,
        parse_export_bytes,
        parse_export_zip,
        stream_exports,
        write_export,
    )

__all__ = [
    "ExportFile",
    "ExportStream",
    "TrustedKey",
    "dump_exposees",
    "dump_records",
    "generate_signing_key",
    "load_export",
    "load_exposees",
    "load_records",
    "parse_export",
    "parse_export_bytes",
    "parse_export_zip",
    "parse_exposees",
    "parse_records",
    "stream_exports",
    "write_export",
]

_HOMES = {
    "dump_records": "proximity.keyfiles.bluezone_json",
    "load_records": "proximity.keyfiles.bluezone_json",
    "parse_records": "proximity.keyfiles.bluezone_json",
    "dump_exposees": "proximity.keyfiles.dp3t_json",
    "load_exposees": "proximity.keyfiles.dp3t_json",
    "parse_exposees": "proximity.keyfiles.dp3t_json",
    "ExportFile": "proximity.keyfiles.gaen_export",
    "ExportStream": "proximity.keyfiles.gaen_export",
    "TrustedKey": "proximity.keyfiles.gaen_export",
    "generate_signing_key": "proximity.keyfiles.gaen_export",
    "load_export": "proximity.keyfiles.gaen_export",
    "parse_export": "proximity.keyfiles.gaen_export",
    "parse_export_bytes": "proximity.keyfiles.gaen_export",
    "parse_export_zip": "proximity.keyfiles.gaen_export",
    "stream_exports": "proximity.keyfiles.gaen_export",
    "write_export": "proximity.keyfiles.gaen_export",
}


__getattr__, __dir__ = lazy_exports(globals(), _HOMES, __all__)
