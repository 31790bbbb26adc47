"""Runnable example agents used by the demo and the tests."""
