"""Epidemic outcomes of app tracing: Covasim driven by the BLE simulator (``pip install
proximity-tracing[epi]``). Kept out of the pure core; imports Covasim only where it runs it."""
