"""Measure the app's per-layer coupling for an epidemic scenario (``make coupling``).

Runs the BLE simulator in each venue the scenario maps a Covasim layer to (every phone carrying the
app, the shipped default estimator, the scenario's scheme and OS mix) and writes the scenario's
coupling file (per-layer P(notify | both carry the app), false notifications per true contact, the
notification delay, 95 % bootstrap intervals over seeds, and the provenance). Deterministic: the same
code and scenario files give the same file, apart from the provenance's time and commit.

    python scripts/measure_coupling.py simulations/quang-ninh-province.toml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from proximity.epi.coupling import measure, save_coupling
from proximity.epi.scenario import load_epidemic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path, help="epidemic scenario (its [app] section)")
    parser.add_argument("--venues", type=Path, help="venue scenario folder (default: the scenario's)")
    args = parser.parse_args(argv)
    scenario = load_epidemic(args.scenario)
    app = scenario.app
    coupling = measure(
        app.venues,
        args.venues or args.scenario.parent,
        scheme=app.scheme,
        os_mix=app.os_mix,
        foreground_share=app.foreground_share,
        seeds=app.coupling_seeds,
        delay=app.delay,
        progress=lambda venue, seconds: print(f"{venue}: done at {seconds:.0f} s", file=sys.stderr),
    )
    out = scenario.coupling_path()
    save_coupling(coupling, out)
    for layer in coupling.layers.values():
        print(
            f"{layer.layer}: p_detect {layer.p_detect:.3f} [{layer.p_detect_low:.3f}, "
            f"{layer.p_detect_high:.3f}]  false/contact {layer.false_rate:.3f} [{layer.false_rate_low:.3f}, "
            f"{layer.false_rate_high:.3f}]"
            f"  ({layer.notified}/{layer.notifiable} notified, {layer.false_notifications} false)"
        )
    print(
        f"delay: mean {coupling.delay_mean_hours:.1f} h (90 % within {coupling.delay_p05_hours:.1f}-"
        f"{coupling.delay_p95_hours:.1f} h); P(day offset) {[round(p, 3) for p in coupling.offsets]}"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
