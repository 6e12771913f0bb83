"""Judge many encounters in one call: sightings as columns plus an encounter index -> one verdict each.

What a simulator or a server does with tens of thousands of encounters: the default estimator (mean
attenuation on GAEN's scale) is vectorised over all of them and agrees with judging each one alone.
"""

from __future__ import annotations

import time

import numpy as np

from proximity.estimation import DEFAULT_ESTIMATOR, EstimationSettings, estimate_batch, resolve_model

rng = np.random.default_rng(3)
T0 = 1_596_880_800.0  # 2020-08-08T10:00:00Z
encounters, packets = 10_000, 4 * 60 * 2  # 2 minutes at 4 packets a second
sender = resolve_model("Samsung A20")  # what a Galaxy A20 broadcasts in its AEM: its calibrated TX
receiver = resolve_model("Google Pixel 2")  # and the receiving phone's RSSI correction
level = rng.uniform(-95, -50, encounters)  # each encounter's mean RSSI
encounter = np.repeat(np.arange(encounters), packets)
times = T0 + np.tile(np.arange(packets) * 0.25, encounters)
rssi = np.round(np.repeat(level, packets) + rng.normal(0, 6, encounter.size))
tx = np.full(encounter.size, sender.tx)
settings = EstimationSettings(rssi_correction=receiver.rssi_correction, minutes=1.0)  # a 1-minute rule

start = time.perf_counter()
verdicts = estimate_batch(times, rssi, tx, encounter, DEFAULT_ESTIMATOR, settings)
seconds = time.perf_counter() - start
print(f"{len(verdicts):,} encounters ({encounter.size:,} sightings) judged in {seconds:.2f} s")
print(f"close contacts: {int(verdicts.close_contact.sum()):,}")
near = verdicts.attenuation_db[verdicts.close_contact]
far = verdicts.attenuation_db[~verdicts.close_contact]
print(f"mean attenuation: close {np.median(near):.0f} dB (median), not close {np.median(far):.0f} dB")
