"""The model zoo, importable as the package data `kbuilder.zoo_specs` (see setup.py)."""
