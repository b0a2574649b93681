"""Stub of the musicnn package for the worker protocol test (see ../README.md)."""
