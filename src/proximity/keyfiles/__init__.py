"""Published key files: GAEN export.zip (signed protobuf), Bluezone daily-key JSON, DP-3T exposee JSON."""

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
