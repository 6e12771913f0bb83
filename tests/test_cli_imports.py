"""The command line imports only what the command it runs needs (a whole `proximity match` is timed
against openssl's ceiling: benchmarks/test_match_process_bench.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from proximity.cli import main as cli_main


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subparsers.choices)


def test_the_command_table_names_every_command_and_its_module() -> None:
    assert _commands(cli_main.build_parser()) == set(cli_main.COMMANDS)  # every module registered
    for command in cli_main.COMMANDS:
        assert _commands(cli_main.build_parser([command, "--help"])) == {
            c for c, module in cli_main.COMMANDS.items() if module == cli_main.COMMANDS[command]
        }
    assert _commands(cli_main.build_parser(["--debug", "nonsense"])) == set(cli_main.COMMANDS)


def _loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout))


def test_match_loads_neither_the_broadcasts_nor_the_simulator_nor_the_http_client() -> None:
    loaded = _loaded_after(
        "from proximity.cli.main import build_parser\n"
        "build_parser(['match'])\n"
        "from proximity.cli.match import receiver_correction\n"
        "receiver_correction(None, None)\n"
    )
    for module in ("proximity.broadcast", "proximity.sim", "proximity.server.client", "proximity.keyring"):
        assert module not in loaded
    for module in ("proximity.estimation.estimators", "proximity.estimation.calibration"):
        assert module not in loaded  # the options and the fleet value are constants
    assert "proximity.crypto.reference" not in loaded  # the numpy backend loads only if it runs
    # and the check can fail: `ids` does load the payloads
    assert "proximity.payloads" in _loaded_after(
        "from proximity.cli.main import build_parser\nbuild_parser(['ids'])"
    )


def test_import_proximity_loads_its_exports_on_first_use() -> None:
    loaded = _loaded_after("import proximity")
    assert [m for m in loaded if m.startswith("proximity")] == ["proximity"]
    import proximity

    assert proximity.match_gaen.__module__ == "proximity.matching.gaen"
    assert set(proximity.__all__) <= set(dir(proximity))


def test_a_one_worker_gaen_match_on_a_log_loads_only_gaen_matching(tmp_path: Path) -> None:
    from proximity.keyfiles.gaen_export import generate_signing_key, signing_key_pem, write_export
    from proximity.log import EncounterLog
    from proximity.matching import DiagnosisKey
    from proximity.schemes.gaen import TemporaryExposureKey

    signer = generate_signing_key()
    (tmp_path / "pub.pem").write_bytes(signing_key_pem(signer)[1])
    key = DiagnosisKey(TemporaryExposureKey(bytes(16), 2_650_032, 144))
    data = write_export([key], signer, key_id="t", start_timestamp=0, end_timestamp=1)
    (tmp_path / "e.zip").write_bytes(data)
    with EncounterLog(tmp_path / "log.db") as log:
        log.add_columns("gaen", [bytes(range(16))], [2_650_032 * 600.0], [-60.0])
    argv = ["match", "--keys", str(tmp_path / "e.zip"), "--pubkey", f"t:v1={tmp_path / 'pub.pem'}"]
    argv += ["--log", str(tmp_path / "log.db"), "--workers", "1", "--json"]
    loaded = _loaded_after(
        "import contextlib, io\nfrom proximity.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main({argv!r}) == 0\n"
    )
    assert "proximity.matching.gaen" in loaded and "proximity.log.id_blocks" in loaded  # it did run
    for module in ("proximity.matching.bluezone", "proximity.matching.dp3t", "proximity.keyfiles.dp3t_json"):
        assert module not in loaded  # another scheme's matcher or key files
    for module in ("concurrent.futures", "multiprocessing"):
        assert module not in loaded  # one worker: no pool
    assert "proximity.estimation.estimators" not in loaded  # nothing matched: nothing to judge
    assert "numpy.ma" not in loaded  # np.unique imports it: the hot path takes proximity.arrays.distinct
    for module in ("traceback", "tempfile", "csv"):
        assert module not in loaded  # --debug, key server URLs and --observed CSVs only


def test_commands_without_linear_algebra_start_openblas_with_one_thread() -> None:
    def blas_threads(command: str, given: str | None) -> str:
        code = (
            "import os\nfrom proximity.cli.main import main\n"
            f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "import numpy\nprint(os.environ.get('OPENBLAS_NUM_THREADS'))"
        )
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        if given is not None:
            env["OPENBLAS_NUM_THREADS"] = given
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        return done.stdout.strip().splitlines()[-1]

    assert blas_threads("match", None) == "1"  # no thread pool for a command that never uses it
    assert blas_threads("match", "3") == "3"  # the user's setting wins
    assert blas_threads("evaluate", None) == "None"  # fits keep OpenBLAS's default
