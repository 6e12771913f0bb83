"""Named phone models from the calibration table the estimator uses, and the radio offsets they imply.

Each agent's phone is one row of the table (oem, device, model, rssi_correction, tx,
calibration_confidence), drawn uniformly. The table says how far a model's radio is from the
reference, so its true offsets follow from it, plus a small residual (``ChannelParams.device_sigma``:
units differ, the table does not know yours):

- receiving: a model with RSSI correction ``c`` reads ``c`` dB low against the reference; the channel's
  ``rssi_at_1m`` is what a phone whose correction is the scenario's ``rssi_correction`` (the fleet
  value the estimators' ``ChannelModel`` assumes) reads, so ``rx offset = rssi_correction - c``;
- transmitting: the table's ``tx`` is the model's calibrated TX power on GAEN's scale, the one every
  estimator uses; the channel's ``rssi_at_1m`` is heard from a phone with the fleet TX
  (``FLEET_TX_POWER_DBM``), so a phone advertises its row's ``tx`` (rounded: the AEM holds whole dBm)
  and transmits ``tx - fleet`` dB above the reference.

The app applies its own row's correction (as real apps do) and puts its row's TX power and confidence
in its GAEN metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from proximity.estimation import CalibrationTable, default_calibration
from proximity.estimation.calibration import FLEET_TX_POWER_DBM

if TYPE_CHECKING:
    from proximity.sim.scenario import Scenario

__all__ = ["DeviceModels"]


@dataclass(frozen=True, slots=True, eq=False)
class DeviceModels:
    """Per agent: its model (row of ``table``) and what follows from it, as arrays of length n."""

    table: CalibrationTable
    model: NDArray[np.int64]  # row index into table.rows
    rssi_correction: NDArray[np.float64]  # what the phone's app adds to each RSSI (table lookup)
    tx_power: NDArray[np.int64]  # what the phone advertises in its GAEN metadata (dBm)
    confidence: NDArray[np.int64]  # calibration confidence it advertises (0-3)
    true_rx_offset: NDArray[np.float64]  # dB the radio reads above the reference (model + residual)
    true_tx_offset: NDArray[np.float64]  # dB the radio transmits above the reference

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        n: int,
        scenario: Scenario,
        table: CalibrationTable | None = None,
    ) -> DeviceModels:
        table = table or default_calibration()
        rows = table.rows
        correction = np.array([r.rssi_correction for r in rows], np.float64)
        tx_table = np.array([r.tx for r in rows], np.float64)
        advertised = np.round(tx_table).astype(np.int64)
        confidence = np.array([r.confidence for r in rows], np.int64)
        model = rng.integers(len(rows), size=n).astype(np.int64)
        sigma = scenario.channel.device_sigma
        residual_rx = rng.normal(0.0, sigma, n)
        residual_tx = rng.normal(0.0, sigma, n)
        return cls(
            table=table,
            model=model,
            rssi_correction=correction[model],
            tx_power=advertised[model],
            confidence=confidence[model],
            true_rx_offset=scenario.rssi_correction - correction[model] + residual_rx,
            true_tx_offset=(tx_table - FLEET_TX_POWER_DBM)[model] + residual_tx,
        )

    def name(self, agent: int) -> str:
        row = self.table.rows[int(self.model[agent])]
        return f"{row.oem} {row.model}"
