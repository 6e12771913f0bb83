"""The key server a health authority runs: accept certified uploads, batch, sign and serve exports.

Importing this package is cheap: the web framework (Starlette, uvicorn) and the JWT library are only
imported by the modules that need them (:mod:`~proximity.server.app`, :mod:`~proximity.server.certificates`),
which come with the ``[server]`` extra. The clients (:mod:`~proximity.server.client`) use the standard
library only.
"""

from __future__ import annotations

__all__: list[str] = []
