"""`dasha sim ...` end to end through the real CLI."""

from __future__ import annotations

import json

import cv2
import pytest
from typer.testing import CliRunner

from dasha.cli import app
from dasha.cli.app import register_all

register_all()
runner = CliRunner()


def test_snapshot_writes_frame_and_json(tmp_path):
    out = tmp_path / "frame.png"
    result = runner.invoke(
        app,
        [
            "sim",
            "snapshot",
            "--out",
            str(out),
            "--focus-v",
            "36.5",
            "--lux",
            "50",
            "--exposure-us",
            "40000",
            "--seed",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    for key in ("in_focus_v", "blur_px", "mean_level", "saturated_fraction", "sim_time_s"):
        assert key in info
    assert info["focus_v"] == 36.5 and info["blur_px"] > 2 and not info["in_focus"]
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (404, 417) and abs(image.mean() - info["mean_level"]) < 1e-6


def test_snapshot_defaults_to_in_focus_and_12_bit_png(tmp_path):
    out = tmp_path / "frame.png"
    result = runner.invoke(
        app, ["sim", "snapshot", "--out", str(out), "--bit-depth", "12", "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["in_focus"] and info["focus_v"] == pytest.approx(info["in_focus_v"])
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.dtype.name == "uint16" and image.max() <= 4095


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--focus-v", "80"], "outside the device limits"),
        (["--exposure-us", "-5"], "exposure_us"),
        (["--scene", "no-such-scene"], "unknown scene"),
        (["--scene", "missing.png"], "does not exist"),
    ],
)
def test_snapshot_bad_input_is_a_clear_error(tmp_path, args, message):
    out = tmp_path / "frame.png"
    result = runner.invoke(app, ["sim", "snapshot", "--out", str(out), *args])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
    assert not out.exists()  # nothing half-written


def test_sheet_writes_png(tmp_path):
    out = tmp_path / "sheet.png"
    result = runner.invoke(
        app,
        [
            "sim",
            "sheet",
            "--out",
            str(out),
            "--focus-v",
            "30,36.8,45",
            "--exposures-us",
            "10000:30000:10000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 exposures x 3 focus voltages" in result.output
    assert cv2.imread(str(out)) is not None


def test_sheet_rejects_bad_list(tmp_path):
    result = runner.invoke(
        app, ["sim", "sheet", "--out", str(tmp_path / "s.png"), "--focus-v", "a,b"]
    )
    assert result.exit_code == 2 and "comma list" in result.output


def test_bench_prints_frames_per_second():
    result = runner.invoke(app, ["sim", "bench", "--frames", "50", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["frames_per_s"] > 0 and info["width"] == 417 and info["height"] == 404
