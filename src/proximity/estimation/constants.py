"""The estimation facts a command line needs before any estimator runs: the estimators' names and the
fleet calibration values. Plain constants, so ``proximity match`` parses its options (and finishes a
run that matched nothing) without loading the estimators, their presets or the calibration table.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_ESTIMATOR",
    "DEFAULT_TX_POWER_DBM",
    "ESTIMATOR_NAMES",
    "FLEET_RSSI_CORRECTION_DB",
    "FLEET_TX_POWER_DBM",
    "PROBABILISTIC",
]

DEFAULT_ESTIMATOR = "mean-attenuation"
PROBABILISTIC = "probabilistic"
# Every estimator's name in the registry's order (proximity.estimation.estimators.ESTIMATORS, a test
# holds the two equal): the default, the probabilistic one, the deployed presets, the NHS model.
ESTIMATOR_NAMES = (
    DEFAULT_ESTIMATOR,
    PROBABILISTIC,
    "enx",
    "cwa",
    "swisscovid",
    "netherlands",
    "bluezone-near",
    "nhs",
)

# The fleet value: the median calibrated TX power and RSSI correction of Google's 2020-08-12 list
# (11,809 Android models); a test holds these to the shipped table. A key ring with no model
# broadcasts FLEET_TX_POWER_DBM; a counterpart that did not say (no AEM, Bluezone) is assumed to.
FLEET_TX_POWER_DBM = -24.0
FLEET_RSSI_CORRECTION_DB = 3.0
DEFAULT_TX_POWER_DBM = FLEET_TX_POWER_DBM
