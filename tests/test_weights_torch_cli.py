"""A PyTorch state_dict through the spec's `weights` section and `--weights` (adapter check)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kbuilder.cli.app import main
from tests.test_weights_torch_models import AlexNet, outputs, relative_difference, seeded, torch_run

pytestmark = pytest.mark.slow


def test_build_with_a_state_dict_loads_by_order(tmp_path, capsys):
    import kbuilder.api as kb

    net = seeded(AlexNet)
    path = tmp_path / "alexnet.pt"
    torch.save(net.state_dict(), path)
    assert main(["build", "alexnet_torchvision", "--weights", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["weights"]
    assert plan["layout"] == "torch" and plan["counts"]["new"] == 0 and plan["counts"]["loaded"] == 8
    built = kb.build("alexnet_torchvision", weights=path)
    images = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype(np.float32)
    assert relative_difference(torch_run(net, images), outputs(built.model, "fc8", images)) < 1e-5
    spec = kb.load("alexnet_torchvision").spec.model_dump(mode="json")
    spec["weights"] = {"from": str(path), "match": "name"}
    with pytest.raises(Exception, match="not the spec's layer names"):
        kb.build(spec)
