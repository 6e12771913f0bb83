"""The BLE shell: btsnoop parsing, capture replay, the bleak scanner façade, the BlueZ advertiser, the node.

Nothing is imported here on purpose: ``btsnoop`` is pure (bytes in), ``recording`` reads files, while
``scanner``, ``replay``, ``advertiser`` and ``node`` load bleak, asyncio or dbus-fast only when their own
module is imported. ``sink`` batches sightings for the encounter log.
"""
