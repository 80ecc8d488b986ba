"""Bad input to every command: exit code 2, a message naming the problem, no traceback and
nothing half-written. The cases are listed per command, and a command of the app without
any case fails ``test_every_command_has_bad_input_cases``: add cases when you add one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from dasha.cli import app, register_all
from dasha.io import write_image

register_all()
runner = CliRunner()

# capture's required options, and those of the serial lens beside the sim camera.
GRID = ["--out", "{tmp}/r", "--exposures", "1000", "--focus", "30"]
SERIAL = [*GRID, "--lens", "varioptic-serial", "--port", "/dev/x"]

# {command path: [(arguments, words the message must contain)]}; "{tmp}" is a fresh
# directory, "{file}" an existing text file, "{image}" a 32x32 PNG and "{tiny}" a 1x1 one.
CASES: dict[str, list[tuple[list[str], str]]] = {
    "perceive": [
        (["{tmp}/missing.png"], "does not exist"),
        (["{image}", "--score-threshold", "nan"], "finite"),
        (["{image}", "--score-threshold", "1.5"], "between 0 and 1"),
        (["{image}", "--weights", "{tmp}/none.weights"], "does not exist"),
        (["{tiny}"], "at least 16x16"),
    ],
    "perceive-bench": [
        (["--batch-size", "0"], "at least 1"),
        (["--repeats", "-1"], "at least 1"),
    ],
    "devices": [(["--bogus"], "No such option")],
    "capture": [
        (["--out", "{tmp}/r", "--exposures", "1:1e9:1", "--focus", "30"], "at most 10000"),
        (["--out", "{tmp}/r", "--exposures", "abc", "--focus", "30"], "comma list"),
        (["--out", "{file}", "--exposures", "1000", "--focus", "30"], "is a file"),
        ([*GRID, "--port", "/dev/x"], "--port does not apply"),
        ([*GRID, "--set", "camera.bogus=1"], "has no option 'bogus'"),
        ([*GRID, "--set", "nonsense"], "camera.KEY=VALUE"),
        ([*SERIAL, "--set", "lens.timeout_s=-1"], "at least 0"),
        ([*SERIAL, "--set", "lens.retries=abc"], "give a number"),
        ([*SERIAL, "--set", "lens.retries=1.5"], "whole number"),
        ([*GRID, "--timeout-s", "0"], "greater than 0"),
        ([*GRID, "--camera", "bogus"], "unknown camera backend"),
        ([*GRID, "--condition", "bogus"], "--condition 'bogus': write KEY=VALUE"),
    ],
    "train": [
        (["--out", "{tmp}/run", "--steps", "0"], "at least 1"),
        (["--out", "{tmp}/run", "--seed", "-1"], "seed"),
        (["--out", "{file}"], "is a file"),
        (["--out", "{tmp}/run", "--env-runners", "-1"], "at least 0"),
        (["--out", "{tmp}/run", "--kl-target", "nan"], "finite"),
        (["--out", "{tmp}/run", "--lr-final", "0"], "greater than 0"),
        (["--out", "{tmp}/run", "--scene", "nope"], "unknown scene 'nope'"),
        (["--out", "{tmp}/run", "--ray-address", "127.0.0.1:1"], "nothing answers there"),
        (["--out", "{tmp}/run", "--stop-rule", "first"], "choose among detection, peak"),
        (["--out", "{tmp}/run", "--focus-action", "steps"], "choose among volts, normalised"),
        (
            ["--out", "{tmp}/run", "--stop-rule", "peak", "--sharp-brisque-max", "18"],
            "peak stop rule needs no BRISQUE gate",
        ),
        (["--out", "{tmp}/run", "--env-runners", "1", "--env-steps-per-s", "0"], "greater than 0"),
        (["--out", "{tmp}/run", "--env-runners", "1", "--env-steps-per-s", "nan"], "finite"),
        (["--out", "{tmp}/run", "--env-steps-per-s", "5"], "give --env-runners"),
    ],
    "focus": [
        (["--lens", "bogus"], "unknown lens backend"),
        (["--port", "/dev/does-not-exist"], "--port does not apply"),
        (
            ["--camera", "replay", "--recording", "{tmp}", "--lens", "varioptic-serial"],
            "its own replay lens",
        ),
        (["--seed", "-5"], "seed"),
        (["--lux", "inf"], "finite"),
        (["--save-frames", "{file}"], "is a file"),
        (["--policy", "{tmp}/no-policies"], "does not exist"),
        (["--policy", "pretraned"], "or a shipped pair: pretrained, ppo"),
        (["--set", "lens.timeout_s=1"], "has no option 'timeout_s'"),
        (["--camera", "replay"], "the replay camera needs --recording"),
        (["--blur-px-per-range", "-3"], "must be greater than 0"),
        (["--handover", "never"], "choose among suitable, always"),
        (["--detector", "yolo9"], "choose among yolo, centernet"),
    ],
    "evaluate": [
        (["--episodes", "0"], "at least 1"),
        (["--episodes-out", "{tmp}/e.json"], ".jsonl"),
        (["--policy", "{file}"], "is not a directory"),
        (["--blur-px-per-range", "nan"], "finite"),
        (["--exposure-moves", "0"], "exposure-moves"),
        (["--exposure-moves", "11"], "exposure-moves"),
        (["--handover", "sometimes"], "choose among suitable, always"),
        (["--detector", "ssd"], "choose among yolo, centernet"),
    ],
    "bench": [
        (["--out", "{tmp}/b", "--baseline", "autofocus"], "unknown baseline(s) autofocus"),
        (["--out", "{tmp}/b", "--episodes", "0"], "at least 1"),
        (["--out", "{tmp}/b", "--rl-steps", "0"], "at least 1"),
        (["--out", "{file}"], "is a file"),
        (["--out", "{tmp}/b", "--scene", "nope"], "unknown scene 'nope'"),
        (["--out", "{tmp}/b", "--handover", "later"], "choose among suitable, always"),
        (["--out", "{tmp}/b", "--detector", "ssd"], "choose among yolo, centernet"),
    ],
    "gate-bench": [
        (["--conditions", "0"], "at least 1"),
        (["--conditions", "99999999999"], "at most 100000"),
        (["--sharp-brisque-max", "-1"], "at least 0"),
    ],
    "dfd-bench": [
        (["--conditions", "0"], "at least 1"),
        (["--condition-set", "nowhere"], "nowhere"),
        (["--condition-set", "paper", "--split", "test"], "split"),
    ],
    "sim snapshot": [
        (["--out", "{tmp}/f.jpg", "--bit-depth", "12"], "12-bit"),
        (["--out", "{tmp}/f.png", "--bit-depth", "10"], "choose 8 or 12"),
        (["--out", "{tmp}/f.xyz"], "give a file ending in"),
        (["--out", "{tmp}"], "is a directory"),
        (["--out", "{file}/f.png"], "is a file, not a directory"),
        (["--out", "{tmp}/f.png", "--lux", "nan"], "finite"),
        (["--out", "{tmp}/f.png", "--scene", "a[/x]b"], "a[/x]b"),
        (["--out", "{tmp}/f.png", "--target-size-cm", "-3"], "greater than 0"),
    ],
    "sim sheet": [
        (["--out", "{tmp}/s.png", "--focus-v", "24:1e9:0.5"], "at most 10000"),
        (["--out", "{tmp}/s.png", "--exposures-us", "nan,1"], "comma list"),
        (["--out", "{tmp}/s.jpg"], ".png"),
    ],
    "sim bench": [(["--frames", "0"], "at least 1"), (["--frames", "1000000000"], "at most")],
    "scenes": [(["--library", "{tmp}/no-photos"], "not a folder")],
    "pretrain": [
        (["--out", "{tmp}/run", "--episodes", "0"], "at least 1"),
        (["--out", "{tmp}/run", "--rounds", "0"], "at least 1"),
        (["--out", "{tmp}/run", "--exposure-conditions", "0"], "at least 1"),
        (["--out", "{tmp}/run", "--exposure-restarts", "-1"], "exposure-restarts"),
        (["--out", "{file}"], "is a file"),
        (["--out", "{tmp}/run", "--split", "test"], "test split is refused"),
        (["--out", "{tmp}/run", "--conditions", "paper", "--split", "train"], "split"),
        (["--out", "{tmp}/run", "--seed", "-1"], "seed"),
        (["--out", "{tmp}/run", "--exposure-observation", "raw"], "choose among paper, bracket"),
        (["--out", "{tmp}/run", "--probe-quantile", "1.5"], "must lie in [0, 1]"),
        (["--out", "{tmp}/run", "--no-probes", "--probe-quantile", "0.5"], "contradict"),
        (["--out", "{tmp}/run", "--stop-rule", "first"], "stop_rule"),
        (["--out", "{tmp}/run", "--stop-rule", "detection"], "stop_rule one of peak, defocus"),
        (["--out", "{tmp}/run", "--focus-head", "categorical"], "needs one of jump-step"),
        (
            ["--out", "{tmp}/run", "--focus-head", "jump-step-defocus", "--no-observe-defocus"],
            "observe_defocus=True",
        ),
        (["--out", "{tmp}/run", "--expert", "oracle"], "choose among truth, defocus"),
        (
            [
                "--out",
                "{tmp}/run",
                "--expert",
                "defocus",
                "--focus-head",
                "jump-step",
                "--no-observe-defocus",
            ],
            "defocus expert follows",
        ),
    ],
    "train-bench": [
        (["--backend", "bogus"], "choose among"),
        (["--steps", "0"], "at least 1"),
        (["--batch-steps", "0"], "at least 1"),
        (["--env-runners", "99"], "0..16"),
    ],
    "serve": [
        (["--port", "0"], "--port"),
        (["--host", "bad..host"], "bad..host"),
        (["--screenshot", "{tmp}/s.txt"], ".png"),
        (["--algorithm", "bogus"], "choose one of: dasha"),
        (["--distance-cm", "nan"], "finite"),
    ],
    "watch": [
        (["--scenario", "bogus"], "unknown scenario 'bogus'"),
        (["--algorithm", "bogus"], "choose one of: dasha"),
        (["--target", "bogus"], "does not know the class 'bogus'"),
        (["--seed", "-1"], "seed"),
        (["--timeline", "{tmp}/t.txt"], ".json"),
        (["--timeline", "{file}/t.json"], "is a file, not a directory"),
        (["--policy", "ppo"], "--policy is for --algorithm dasha"),
        (["--algorithm", "dasha", "--policy", "{tmp}/none"], "does not exist"),
    ],
    "scenes build": [
        (["--out", "{tmp}/c.txt"], ".json"),
        (["--out", "{tmp}/c.json", "--backgrounds-per-target", "0"], "at least 1"),
    ],
    "scenes sheet": [
        (["--out", "{tmp}/s.png", "--count", "0"], "1..24"),
        (["--out", "{tmp}/s.jpg"], ".png"),
    ],
}


def command_paths() -> list[str]:
    """Every command of the app, as typed after ``dasha`` (groups with a callback too)."""
    paths = []

    def walk(command: typer.core.TyperGroup, prefix: list[str]) -> None:
        for name, sub in command.commands.items():
            if hasattr(sub, "commands"):
                if sub.callback is not None:
                    paths.append(" ".join([*prefix, name]))
                walk(sub, [*prefix, name])
            else:
                paths.append(" ".join([*prefix, name]))

    walk(typer.main.get_command(app), [])  # type: ignore[arg-type]
    return paths


def test_every_command_has_bad_input_cases() -> None:
    missing = [p for p in command_paths() if p not in CASES]
    assert not missing, f"add bad-input cases for: {missing}"


def _fill(args: list[str], tmp: Path) -> list[str]:
    (tmp / "file.txt").write_text("not a directory\n")
    write_image(tmp / "image.png", np.full((32, 32), 128, np.uint8))
    write_image(tmp / "tiny.png", np.full((1, 1), 128, np.uint8))
    names = {
        "{tmp}": str(tmp),
        "{file}": str(tmp / "file.txt"),
        "{image}": str(tmp / "image.png"),
        "{tiny}": str(tmp / "tiny.png"),
    }
    out = []
    for arg in args:
        for key, value in names.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [(c, a, m) for c, cases in CASES.items() for a, m in cases],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_is_a_clear_error(tmp_path: Path, command: str, args: list[str], message: str):
    before = set(tmp_path.rglob("*"))
    result = runner.invoke(app, [*command.split(), *_fill(args, tmp_path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message in text
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    given = ("file.txt", "image.png", "tiny.png")
    left = {p for p in set(tmp_path.rglob("*")) - before if p.name not in given}
    assert not left, f"left behind: {left}"  # nothing written, not even a temporary file


@pytest.mark.parametrize(
    "args",
    [
        ["sim", "snapshot", "--out", "frame.jpg", "--bit-depth", "12"],
        ["focus", "--camera", "sim", "--lens", "varioptic-serial", "--port", "/dev/nonexistent"],
        ["sim", "sheet", "--out", "s.png", "--focus-v", "1:1e9:1"],
    ],
)
def test_real_process_exits_2_without_traceback(tmp_path: Path, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "dasha", *args],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback() -> None:
    from dasha.cli.app import _debug, handle_errors

    probe = typer.Typer()

    @probe.command()
    @handle_errors
    def boom() -> None:
        raise ZeroDivisionError("division by zero")

    result = runner.invoke(probe, [])
    assert result.exit_code == 1
    assert "unexpected ZeroDivisionError: division by zero" in result.output
    assert "Traceback" not in result.output
    _debug["on"] = True
    try:
        result = runner.invoke(probe, [])
    finally:
        _debug["on"] = False
    assert result.exit_code == 1 and "Traceback" in result.output


def test_json_output_is_strict_json() -> None:
    from dasha.io import json_text

    assert json_text({"a": float("nan"), "b": [np.float32("inf"), 1.5]}) == (
        '{"a": null, "b": [null, 1.5]}'
    )


def _crafted_policies(tmp_path: Path, change) -> Path:
    """The shipped policies with ``change(payload)`` applied to the focus policy's file."""
    import shutil

    import torch

    from dasha.agents.run import shipped_policy_dir

    folder = tmp_path / "policies"
    shutil.copytree(shipped_policy_dir("efficientnet-lite0"), folder)
    payload = torch.load(folder / "focus.pt", weights_only=True)
    change(payload)
    torch.save(payload, folder / "focus.pt")
    return folder


def _nan_weights(payload: dict) -> None:
    for tensor in payload["state_dict"].values():
        tensor.fill_(float("nan"))


def _wrong_shape(payload: dict) -> None:
    payload["spec"]["hidden"] = [7]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["spec"].pop("obs_dim"), "not a DASHA policy file"),
        (lambda p: p["spec"].update(hidden=[]), "at least one hidden layer"),
        (lambda p: p["spec"].update(obs_dim=-3), "positive whole numbers"),
        (_wrong_shape, "do not fit the network"),
        (_nan_weights, "not finite"),
        (lambda p: p.pop("state_dict"), "no state_dict"),
        (lambda p: p.update(format=99), "policy format 99"),
    ],
)
def test_a_broken_policy_file_is_a_clear_error(tmp_path: Path, change, message: str) -> None:
    folder = _crafted_policies(tmp_path, change)
    result = runner.invoke(app, ["focus", "--policy", str(folder)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("size_px", "sidecar", "message"),
    [
        (64, '{"class": "car", "box": [10, 10, 10.2, 10.2]}', "smaller than 4 px"),
        (1, '{"class": "car", "box": [0, 0, 1, 1]}', "at least 16 px"),
        (64, '{"class": "car", "box": [10, 10, 90, 20]}', "inside the 64x64 image"),
        (64, '{"class": "car", "box": [10, 10, NaN, 20]}', "inside the 64x64 image"),
        (64, '["car"]', "expected"),
        (64, "{not json", "expected"),
    ],
)
def test_a_bad_scene_sidecar_is_a_clear_error(tmp_path, size_px, sidecar, message) -> None:
    write_image(tmp_path / "photo.png", np.full((size_px, size_px), 90, np.uint8))
    (tmp_path / "photo.json").write_text(sidecar)
    out = tmp_path / "frame.png"
    result = runner.invoke(
        app, ["sim", "snapshot", "--scene", str(tmp_path / "photo.png"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and not out.exists()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A real 2x2 recording of the simulated rig, made by `dasha capture`."""
    out = tmp_path_factory.mktemp("rec") / "rec"
    result = runner.invoke(
        app, ["capture", "--out", str(out), "--exposures", "20000,40000", "--focus", "36,37"]
    )
    assert result.exit_code == 0, result.output
    return out


def _edit_manifest(manifest: dict) -> None:
    del manifest["frames"]


def _outside(manifest: dict) -> None:
    manifest["frames"]["e000_f000"]["file"] = "../../../etc/passwd"


def _off_grid(manifest: dict) -> None:
    manifest["frames"]["e007_f000"] = manifest["frames"]["e000_f000"]


def _colour_frame(folder: Path) -> None:
    write_image(folder / "frames" / "e000_f000.png", np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_edit_manifest, "'frames' is missing"),
        (_outside, "points outside the recording"),
        (_off_grid, "not a point of the 2x2 grid"),
        (lambda m: m.update(bit_depth="x"), "'bit_depth' must be one of"),
        (lambda m: m.update(exposures_us=[]), "non-empty list of finite numbers"),
        (_colour_frame, "grey frames"),
    ],
)
def test_a_broken_recording_is_a_clear_error(tmp_path, recording, change, message) -> None:
    import json
    import shutil

    folder = tmp_path / "rec"
    shutil.copytree(recording, folder)
    if change is _colour_frame:
        change(folder)
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["focus", "--camera", "replay", "--recording", str(folder)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_outputs_respect_the_umask(tmp_path) -> None:
    from dasha.io import write_json

    old = os.umask(0o027)
    try:
        write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("camera.calibration=1", "set it from Python"),
        ("camera.seed=1.5", "whole number"),
        ("camera.scene=[1]", "text value"),
        ("camera.width=-1", "at least 0"),
    ],
)
def test_set_values_are_checked_against_the_declared_option_types(setting, message) -> None:
    result = runner.invoke(app, ["focus", "--set", setting])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
