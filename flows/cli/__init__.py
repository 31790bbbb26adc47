"""The ``impactgate`` command line."""
