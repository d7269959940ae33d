"""Ensembles of trained runs (`kbuilder ensemble`).

    run.py       the command's flow: the ensemble folder, its plan, training, export
    members.py   which runs make up an ensemble; training the ones that do not exist yet
    evaluate.py  every member and the combinations on one test set
    combine.py   averaging and voting over class probabilities (NumPy)
    model.py     the ensemble as one Keras model (members as sub-models, outputs averaged)

Importing this package does not import Keras: it is imported once the backend is chosen.
"""

from kbuilder.experiments.ensemble.run import EnsembleOptions, EnsembleResult, run_ensemble

__all__ = ["EnsembleOptions", "EnsembleResult", "run_ensemble"]
