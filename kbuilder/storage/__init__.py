"""Shared storage infrastructure, low in the layer order: atomic file writes, directory
swaps and the run directory's format. Imports nothing of kbuilder but `errors`."""
