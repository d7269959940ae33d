"""MACs and receptive fields against figures published for the classic networks."""

from __future__ import annotations

import pytest

from kbuilder import api
from tests.conftest import SPECS

# (spec, published multiply-accumulates per image, receptive field of the last conv layer)
# MACs: VGG-16 15.5 G and ResNet-50 3.9 G (e.g. the torchvision model cards), AlexNet
# with its two-GPU groups 0.72 G, GoogLeNet "1.5 billion multiply-adds" (Szegedy et al.
# 2014, section 5). Receptive fields: 195 (AlexNet), 212 (VGG-16), 483 (ResNet-50), as
# tabulated by Araujo et al., "Computing Receptive Fields of CNNs", Distill 2019.
PUBLISHED = [
    ("alexnet", 0.72e9, 195),
    ("vgg16", 15.47e9, 212),
    ("resnet50", 3.86e9, 483),
    ("googlenet", 1.5e9, None),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,macs,field", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_macs_and_receptive_field_match_published_figures(name, macs, field):
    report = api.report(api.build(SPECS / f"{name}.yaml"))
    assert report.macs == pytest.approx(macs, rel=0.06)
    spatial = [
        row.receptive_field for row in report.rows if row.receptive_field and row.receptive_field.stride
    ]
    if field is not None:
        assert spatial[-1].size == (field, field) and spatial[-1].stride == (32, 32)


def test_lenet5_c3_macs_count_only_connected_maps():
    report = api.report(api.build(SPECS / "lenet5.yaml"))
    c3 = next(row for row in report.rows if row.kind == "partial_conv2d")
    assert c3.macs == 10 * 10 * 60 * 25  # 60 connections of 5x5 kernels at 10x10 positions
