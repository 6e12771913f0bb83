"""Epidemic outcomes of app tracing: Covasim driven by the BLE simulator (``pip install
proximity-tracing[epi]``). Kept out of the pure core; imports Covasim only where it runs it.

Covasim prints a licence banner on stdout when imported (which would break ``--json``) and Starsim
rebuilds the user's font cache: both are switched off here, before any import of them, unless set.
"""

import os

os.environ.setdefault("COVASIM_VERBOSE", "0")
os.environ.setdefault("STARSIM_INSTALL_FONTS", "0")
