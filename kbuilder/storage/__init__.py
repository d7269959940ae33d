"""Shared storage infrastructure, low in the layer order: atomic file writes (atomic.py),
the run directory's format and writer (rundir.py), its reader (run_reader.py) and its
lock (lock.py). Imports nothing of kbuilder but `errors` (and PyYAML for the resolved spec)."""
