"""The scene library: its catalogue, splits, Debian sources, the well-posedness check."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.sim.library import SPLITS, catalogue, load_library_scene, split_of
from dasha.sim.sources import TUXPAINT_STAMPS, ensure_members
from dasha.sim.world import Conditions, SimWorld


def test_catalogue_has_hundreds_of_well_posed_scenes_in_every_split() -> None:
    cat = catalogue()
    counts = {s: len(cat.select(s)) for s in SPLITS}
    assert sum(counts.values()) >= 300, counts
    assert counts["test"] >= 60, counts
    assert counts["val"] >= 30, counts
    assert len({e.target_class for e in cat.select("test")}) >= 5


def test_split_is_by_source_photo_and_disjoint() -> None:
    cat = catalogue()
    splits_of_photo: dict[str, set[str]] = defaultdict(set)
    for entry in cat.scenes.values():
        for photo in (entry.target, entry.background):
            if photo is not None:
                assert cat.photos[photo].split == entry.split, entry.id
                splits_of_photo[photo].add(entry.split)
    assert all(len(s) == 1 for s in splits_of_photo.values())
    # No file appears under two ids (byte-identical copies would cross the split).
    digests = [p.sha256 for p in cat.photos.values() if p.sha256]
    assert len(digests) == len(set(digests))


def test_split_rule_is_deterministic_and_built_ins_train() -> None:
    ids = [f"photo-{i}" for i in range(2000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]
    shares = {s: first.count(s) / len(ids) for s in SPLITS}
    assert shares["train"] == pytest.approx(0.6, abs=0.05)
    assert shares["test"] == pytest.approx(0.2, abs=0.05)
    assert split_of("builtin-motorcycle") == "train"


def test_left_out_scenes_say_why() -> None:
    left_out = catalogue().select(None, include_ill_posed=True)
    reasons = [e.reason for e in left_out if not e.well_posed]
    assert reasons and all(reasons)


def test_offline_fetch_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    monkeypatch.setenv("DASHA_DOWNLOAD", "0")
    member = "usr/share/tuxpaint/stamps/animals/mammals/bovines/cow.png"
    with pytest.raises(ConfigError, match="DASHA_DOWNLOAD=0") as info:
        ensure_members(TUXPAINT_STAMPS, {member: "0" * 64})
    assert TUXPAINT_STAMPS.url in str(info.value)
    assert str(tmp_path / "debs" / TUXPAINT_STAMPS.filename) in str(info.value)


def test_unreachable_mirror_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    monkeypatch.setenv("DASHA_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    with pytest.raises(ConfigError, match="could not download"):
        ensure_members(TUXPAINT_STAMPS, {"usr/x.png": "0" * 64})
    assert not list(tmp_path.glob(".deb-*")), "a failed download leaves nothing behind"


def test_a_damaged_package_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    (tmp_path / "debs").mkdir()
    (tmp_path / "debs" / TUXPAINT_STAMPS.filename).write_bytes(b"!<arch>\nnot the package")
    with pytest.raises(ConfigError, match="SHA-256"):
        ensure_members(TUXPAINT_STAMPS, {"usr/x.png": "0" * 64})


def _test_scene_ids(n: int) -> list[str]:
    cutouts = [e for e in catalogue().select("test") if e.background is not None]
    return [e.id for e in cutouts[:n]]


def test_library_scene_renders_with_its_own_alpha_and_background() -> None:
    """Fetches the pinned Debian packages (once, into the cache) for real."""
    name = _test_scene_ids(1)[0]
    scene = load_library_scene(name)
    assert scene.background is not None and scene.target_mask is not None
    assert 0.05 < float(scene.target_mask.mean()) < 0.98  # a real silhouette, not a box
    world = SimWorld(Conditions(name, 150.0, 100.0, 400.0, target_size_cm=8.0), seed=0)
    layers = world.layers
    on_target = world.reflectance_at(world.in_focus_v())
    on_background = world.reflectance_at(world.optics.in_focus_v(400.0))
    inside = layers.alpha >= 1.0
    outside = cv2.dilate((layers.alpha > 0.001).astype(np.uint8), np.ones((61, 61))) == 0
    # Two depth planes: each is sharp exactly when the lens is focused on it.
    assert np.allclose(on_target[inside], layers.target[inside], atol=1e-5)
    assert not np.allclose(on_background[inside], layers.target[inside], atol=1e-3)
    assert np.allclose(on_background[outside], layers.background[outside], atol=1e-5)
    assert not np.allclose(on_target[outside], layers.background[outside], atol=1e-3)


def test_catalogue_checks_are_reproducible() -> None:
    """Re-running the well-posedness check gives the catalogue's own figures (same seed)."""
    from dasha.bench.wellposed import Judge, check_scene

    judge = Judge("yolo")
    for name in _test_scene_ids(2):
        entry = catalogue().scenes[name]
        again = check_scene(load_library_scene(name), judge)
        assert again["well_posed"] == entry.well_posed
        assert again["sharp_scores"] == pytest.approx(entry.check["sharp_scores"], abs=0.02)
        assert again.get("height_fractions") == entry.check.get("height_fractions")


def _write_scene(folder: Path, stem: str, image: np.ndarray, cls: str, box: list[float]) -> None:
    cv2.imwrite(str(folder / f"{stem}.png"), image)
    (folder / f"{stem}.json").write_text(json.dumps({"class": cls, "box": box}))


def test_user_folder_is_a_library_and_undetectable_scenes_are_left_out(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dasha.cli import app, register_all
    from dasha.sim.scenes import load_scene

    register_all()
    # A good scene (a built-in photograph, saved as a user would) and two bad ones.
    hopper = load_scene("grace_hopper")
    srgb = np.where(
        hopper.reflectance <= 0.0031308,
        hopper.reflectance * 12.92,
        1.055 * hopper.reflectance ** (1 / 2.4) - 0.055,
    )
    _write_scene(
        tmp_path, "hopper", np.uint8(np.clip(srgb, 0, 1) * 255), "person", list(hopper.target_box)
    )
    _write_scene(tmp_path, "blank", np.full((300, 300), 128, np.uint8), "car", [50, 50, 250, 250])
    cv2.imwrite(str(tmp_path / "nosidecar.png"), np.zeros((64, 64), np.uint8))
    result = CliRunner().invoke(app, ["scenes", "--library", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    records = {Path(r["id"]).stem: r for r in json.loads(result.stdout)["scenes"]}
    assert records["hopper"]["well_posed"], records["hopper"]
    assert not records["blank"]["well_posed"]
    assert "not found in focus" in records["blank"]["reason"]
    assert not records["nosidecar"]["well_posed"]
    assert "sidecar" in records["nosidecar"]["reason"]


def test_scenes_command_lists_a_split_as_json() -> None:
    from typer.testing import CliRunner

    from dasha.cli import app, register_all

    register_all()
    result = CliRunner().invoke(app, ["scenes", "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["scenes"] >= 60
    assert data["summary"]["target_photos"] >= 10 and data["summary"]["background_photos"] >= 5
    first = data["scenes"][0]
    assert {"id", "class", "split", "target_source", "check"} <= set(first)
    assert all(r["split"] == "test" for r in data["scenes"])
    bad = CliRunner().invoke(app, ["scenes", "--split", "tset"])
    assert bad.exit_code == 2 and "choose one of" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scenes", "--split", "tset"], "choose one of"),
        (["scenes", "--library", "/does/not/exist"], "not a folder"),
        (["scenes", "--library", "{empty}"], "no images"),
        (["scenes", "--library", "{empty}", "--split", "test"], "no --split"),
        (["scenes", "--detector", "mtcnn"], "rebuild it"),
        (["scenes", "build", "--out", "{empty}/cat.txt"], "ending in .json"),
        (["scenes", "sheet", "--out", "{empty}/s.png", "--count", "0"], "1..24"),
        (["scenes", "sheet", "--out", "{empty}/s.jpg"], "ending in .png"),
        (["scenes", "sheet", "--out", "{empty}/s.png", "--split", "nope"], "choose one of"),
        (
            ["scenes", "build", "--out", "{empty}/c.json", "--backgrounds-per-target", "0"],
            "at least 1",
        ),
    ],
)
def test_scenes_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from dasha.cli import app, register_all

    register_all()
    args = [a.replace("{empty}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_scenes_sheet_writes_a_png(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dasha.cli import app, register_all

    register_all()
    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["scenes", "sheet", "--out", str(out), "--count", "2"])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 200


def test_shipped_catalogue_is_what_the_code_writes() -> None:
    """The file round-trips through ``Catalogue``: every photo's split is the rule's."""
    from importlib import resources

    from dasha.sim.library import CATALOGUE_FILE, Catalogue, catalogue_text

    text = resources.files("dasha").joinpath("data", "scenes", CATALOGUE_FILE).read_text()
    data = json.loads(text)
    assert catalogue_text(Catalogue.from_dict(data)) == text
    assert all(p["split"] == split_of(p["id"]) for p in data["photos"])


def test_error_messages_keep_their_brackets(tmp_path: Path) -> None:
    """The sidecar hint names the JSON to write, brackets included (not eaten as markup)."""
    from typer.testing import CliRunner

    from dasha.cli import app, register_all

    register_all()
    cv2.imwrite(str(tmp_path / "photo.png"), np.zeros((32, 32), np.uint8))
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "snapshot",
            "--scene",
            str(tmp_path / "photo.png"),
            "--out",
            str(tmp_path / "f.png"),
        ],
    )
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert '"box": [x1, y1, x2, y2]' in said
    weird = CliRunner().invoke(app, ["scenes", "--split", "[/x]"])
    assert weird.exit_code == 2 and "[/x]" in weird.output


def test_two_scenes_of_one_name_are_judged_each_on_its_own() -> None:
    """Two photos with the same stem (photo.png, photo.jpg) must not share rendered layers."""
    from dataclasses import replace

    from dasha.bench.wellposed import Judge, check_scene
    from dasha.sim.scenes import Scene, load_scene

    judge = Judge("yolo")
    hopper = replace(load_scene("grace_hopper"), name="photo")
    blank = Scene("photo", np.full((300, 300), 0.3, np.float32), "person", (50, 50, 250, 250))
    assert check_scene(hopper, judge)["well_posed"]
    assert not check_scene(blank, judge)["well_posed"]
