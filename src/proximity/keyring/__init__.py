"""The device's own keys: a pure model and its file."""

from proximity.keyring.batch import KeyRings
from proximity.keyring.model import DEFAULT_TX_POWER, KeyRing, KeyRingSettings
from proximity.keyring.store import (
    default_keyring_path,
    load_keyring,
    resolve_keyring_path,
    save_keyring,
    wipe_keyring,
)

__all__ = [
    "DEFAULT_TX_POWER",
    "KeyRing",
    "KeyRingSettings",
    "KeyRings",
    "default_keyring_path",
    "load_keyring",
    "resolve_keyring_path",
    "save_keyring",
    "wipe_keyring",
]
