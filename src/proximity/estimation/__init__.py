"""Close-contact estimation from RSSI (pure core: numpy only; the one file read is the packaged table).

Calibration and attenuation, GAEN v2 scan instances / exposure windows with the deployed presets, the
probabilistic estimator, a registry of estimators by name, and scoring (ROC AUC, TC4TL nDCF with
bootstrap intervals).

Exports load on first use (PEP 562): ``proximity match`` reads the estimators' names and the fleet
values (:mod:`proximity.estimation.constants`) without loading an estimator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proximity.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from proximity.estimation.attenuation_mean import BatchVerdicts
    from proximity.estimation.calibration import (
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
    from proximity.estimation.constants import (
        DEFAULT_ESTIMATOR,
        DEFAULT_TX_POWER_DBM,
        ESTIMATOR_NAMES,
        FLEET_RSSI_CORRECTION_DB,
        FLEET_TX_POWER_DBM,
    )
    from proximity.estimation.estimators import (
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
    "ESTIMATOR_NAMES",
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

_HOMES = {
    "DEFAULT_ESTIMATOR": "proximity.estimation.constants",
    "DEFAULT_TX_POWER_DBM": "proximity.estimation.constants",
    "ESTIMATORS": "proximity.estimation.estimators",
    "ESTIMATOR_NAMES": "proximity.estimation.constants",
    "FLEET_RSSI_CORRECTION_DB": "proximity.estimation.constants",
    "FLEET_TX_POWER_DBM": "proximity.estimation.constants",
    "PRESETS": "proximity.estimation.presets",
    "TC4TL_DISTANCES": "proximity.estimation.scoring",
    "BatchVerdicts": "proximity.estimation.attenuation_mean",
    "Calibration": "proximity.estimation.calibration",
    "CalibrationLevel": "proximity.estimation.calibration",
    "CalibrationRow": "proximity.estimation.calibration",
    "CalibrationTable": "proximity.estimation.calibration",
    "ChannelModel": "proximity.estimation.probabilistic",
    "ContactEstimate": "proximity.estimation.probabilistic",
    "CounterpartSightings": "proximity.estimation.windows",
    "EstimationSettings": "proximity.estimation.estimators",
    "Estimator": "proximity.estimation.estimators",
    "ExposureWindow": "proximity.estimation.windows",
    "FittedDefaults": "proximity.estimation.fitted",
    "Interval": "proximity.estimation.scoring",
    "ModelAlias": "proximity.estimation.calibration",
    "Preset": "proximity.estimation.presets",
    "ScanInstances": "proximity.estimation.windows",
    "Verdict": "proximity.estimation.estimators",
    "attenuation": "proximity.estimation.calibration",
    "bootstrap_ndcf": "proximity.estimation.scoring",
    "default_aliases": "proximity.estimation.calibration",
    "default_calibration": "proximity.estimation.calibration",
    "estimate": "proximity.estimation.estimators",
    "estimate_batch": "proximity.estimation.estimators",
    "estimate_contact": "proximity.estimation.probabilistic",
    "estimator_names": "proximity.estimation.estimators",
    "exposure_windows": "proximity.estimation.windows",
    "fit_channel_model": "proximity.estimation.probabilistic",
    "fit_threshold": "proximity.estimation.scoring",
    "get_estimator": "proximity.estimation.estimators",
    "ndcf": "proximity.estimation.scoring",
    "ndcf_difference": "proximity.estimation.scoring",
    "ndcf_interval": "proximity.estimation.scoring",
    "operating_point": "proximity.estimation.scoring",
    "p_within_at": "proximity.estimation.probabilistic",
    "parse_aliases": "proximity.estimation.calibration",
    "resolve_model": "proximity.estimation.calibration",
    "roc_auc": "proximity.estimation.scoring",
    "scan_instances": "proximity.estimation.windows",
    "shipped_defaults": "proximity.estimation.fitted",
    "verdict": "proximity.estimation.estimators",
}

__getattr__, __dir__ = lazy_exports(globals(), _HOMES, __all__)
