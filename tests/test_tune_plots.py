"""The study's plots: axes named after the metric, a diverged trial kept off the others' scale
and marked; the study's objective named for optuna-dashboard."""

from __future__ import annotations

import matplotlib.pyplot as plt
import optuna
import pytest

from kbuilder.experiments.tune.plots import draw, robust_range, write_plots


def study_with_a_diverged_trial() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    distribution = {"lr": optuna.distributions.FloatDistribution(0.001, 0.1, log=True)}
    values = [0.941, 0.945, 0.948, 0.950, 0.943, 0.109, 0.947, 0.946]  # trial 5 diverged
    for index, value in enumerate(values):
        params = {"lr": 0.001 * (1.7**index)}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distribution, value=value))
    return study


def test_the_robust_range_leaves_out_a_diverged_value_only():
    low, high = robust_range([0.941, 0.945, 0.948, 0.950, 0.943, 0.109, 0.947, 0.946])
    assert 0.109 < low < 0.941 and high >= 0.950 and high - low < 0.1
    assert robust_range([0.941, 0.945, 0.948, 0.950]) is None  # nothing to leave out
    assert robust_range([0.1, 0.9]) is None  # too few values to tell


@pytest.mark.parametrize("name", ["history", "slice"])
def test_the_metric_names_the_axis_and_the_outlier_is_marked(name):
    figure = draw(study_with_a_diverged_trial(), name, "val_accuracy")
    try:
        ax = figure.axes[0]
        assert ax.get_ylabel() == "val_accuracy"
        low, high = ax.get_ylim()
        assert low > 0.5 and high < 1.0  # the 0.94-0.95 values spread over the axis
        labels = [text.get_text() for text in ax.texts]
        assert "0.109" in labels  # the diverged trial, on the edge with its value
    finally:
        plt.close(figure)


def test_the_importance_plot_names_the_metric_and_files_are_written(tmp_path):
    study = study_with_a_diverged_trial()
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        study.set_metric_names(["val_accuracy"])
    made = write_plots(study, tmp_path, "val_accuracy")
    assert all((tmp_path / f"{name}.png").stat().st_size > 1000 for name in made), made
    figure = draw(study, "importance", "val_accuracy")
    try:
        assert "val_accuracy" in figure.axes[0].get_xlabel()
    finally:
        plt.close(figure)
    assert study.metric_names == ["val_accuracy"]
