import json

import cv2
import pytest
from typer.testing import CliRunner

from dasha.cli import app, register_all
from perception_scenes import SCENES


@pytest.fixture(scope="module")
def runner():
    register_all()
    return CliRunner()


def test_perceive_json(runner, tmp_path):
    path = tmp_path / "moto.png"
    cv2.imwrite(str(path), SCENES[1][1]())
    result = runner.invoke(app, ["perceive", str(path), "--target", "motorbike", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["feature_dim"] == 1280
    assert len(out["histogram"]) == 10 and len(out["bin_edges"]) == 11
    assert out["bin_edges"][0] <= out["peak"] <= out["bin_edges"][-1]
    assert out["target"]["class"] == "motorbike" and out["target"]["score"] > 0.5
    assert 0 <= out["brisque_clipped"] <= 100
    assert set(out["focus"]) == {
        "tenengrad",
        "variance_of_laplacian",
        "brenner",
        "normalized_variance",
    }
    assert {"encoder", "detector", "brisque", "histogram", "focus"} <= set(out["timings_ms"])


def test_perceive_errors_are_clean(runner, tmp_path):
    result = runner.invoke(app, ["perceive", str(tmp_path / "missing.png")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["perceive", str(tmp_path / "x.png"), "--encoder", "vgg"])
    assert result.exit_code == 2
