"""Command-line interface (an edge of the library)."""
