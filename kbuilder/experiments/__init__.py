"""Workflows on top of `kbuilder train`: hyperparameter search (`tune_*`), ensembles and comparisons.

Every trial or member is an ordinary run directory trained through kbuilder.train.train.
"""
