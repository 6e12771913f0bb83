"""Close-contact estimation from RSSI (pure core: numpy only; the one file read is the packaged table).

Calibration and attenuation, GAEN v2 scan instances / exposure windows with the deployed presets, the
probabilistic estimator, a registry of estimators by name, and scoring (ROC AUC, TC4TL nDCF with
bootstrap intervals).
"""

from proximity.estimation.attenuation_mean import BatchVerdicts
from proximity.estimation.calibration import (
    DEFAULT_TX_POWER_DBM,
    FLEET_RSSI_CORRECTION_DB,
    FLEET_TX_POWER_DBM,
    Calibration,
    CalibrationLevel,
    CalibrationRow,
    CalibrationTable,
    ModelAlias,
    attenuation,
    default_aliases,
    default_calibration,
    parse_aliases,
    resolve_model,
)
from proximity.estimation.estimators import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    EstimationSettings,
    Estimator,
    Verdict,
    estimate,
    estimate_batch,
    estimator_names,
    get_estimator,
    verdict,
)
from proximity.estimation.fitted import FittedDefaults, shipped_defaults
from proximity.estimation.presets import PRESETS, Preset
from proximity.estimation.probabilistic import (
    ChannelModel,
    ContactEstimate,
    estimate_contact,
    fit_channel_model,
    p_within_at,
)
from proximity.estimation.scoring import (
    TC4TL_DISTANCES,
    Interval,
    bootstrap_ndcf,
    fit_threshold,
    ndcf,
    ndcf_difference,
    ndcf_interval,
    operating_point,
    roc_auc,
)
from proximity.estimation.windows import (
    CounterpartSightings,
    ExposureWindow,
    ScanInstances,
    exposure_windows,
    scan_instances,
)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "DEFAULT_TX_POWER_DBM",
    "ESTIMATORS",
    "FLEET_RSSI_CORRECTION_DB",
    "FLEET_TX_POWER_DBM",
    "PRESETS",
    "TC4TL_DISTANCES",
    "BatchVerdicts",
    "Calibration",
    "CalibrationLevel",
    "CalibrationRow",
    "CalibrationTable",
    "ChannelModel",
    "ContactEstimate",
    "CounterpartSightings",
    "EstimationSettings",
    "Estimator",
    "ExposureWindow",
    "FittedDefaults",
    "Interval",
    "ModelAlias",
    "Preset",
    "ScanInstances",
    "Verdict",
    "attenuation",
    "bootstrap_ndcf",
    "default_aliases",
    "default_calibration",
    "estimate",
    "estimate_batch",
    "estimate_contact",
    "estimator_names",
    "exposure_windows",
    "fit_channel_model",
    "fit_threshold",
    "get_estimator",
    "ndcf",
    "ndcf_difference",
    "ndcf_interval",
    "operating_point",
    "p_within_at",
    "parse_aliases",
    "resolve_model",
    "roc_auc",
    "scan_instances",
    "shipped_defaults",
    "verdict",
]
