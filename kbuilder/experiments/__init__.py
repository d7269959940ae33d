"""Experiments on top of `kbuilder train`: hyperparameter search, ensembles and run comparisons."""
