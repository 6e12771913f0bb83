"""The command line imports only what the command it runs needs (a whole `proximity match` is timed
against openssl's ceiling: benchmarks/test_match_process_bench.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

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
        "from proximity.cli.match import receiver_settings\n"
        "from proximity.estimation.calibration import default_calibration\n"
        "receiver_settings(None, None)\n"
        "assert default_calibration.cache_info().currsize == 0, 'the table was parsed'\n"
    )
    for module in ("proximity.broadcast", "proximity.sim", "proximity.server.client", "proximity.keyring"):
        assert module not in loaded
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
