"""The onnxruntime backend against the reference one (torch, cv2.dnn), and its model cache."""

import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.perception import onnx_runtime
from dasha.perception.detectors import load_detector
from dasha.perception.encoder import load_encoder
from perception_scenes import SCENES, disk_blur


@pytest.fixture(scope="module")
def sim_frames():
    """Simulator frames of every built-in scene, sharp and defocused."""
    from dasha.hardware import open_camera, open_lens

    frames = []
    for name, *_ in SCENES:
        camera = open_camera("sim", scene=name, distance_cm=170.0, illuminance_lux=100.0, seed=0)
        lens = open_lens("sim", camera=camera)
        for focus_v in (camera.world.optics.in_focus_v(170.0), 40.0):
            lens.set_focus(focus_v)
            frames.append(camera.grab().as_uint8())
    return frames


def test_encoder_features_match_torch(sim_frames):
    fast, reference = load_encoder(backend="onnxruntime"), load_encoder(backend="reference")
    assert (fast.backend, reference.backend) == ("onnxruntime", "reference")
    for image in sim_frames:
        want = reference.encode(image)
        np.testing.assert_allclose(
            fast.encode(image), want, rtol=1e-4, atol=1e-4 * np.abs(want).max()
        )
    batch = fast.encode_batch(sim_frames[:3])
    np.testing.assert_allclose(batch, reference.encode_batch(sim_frames[:3]), rtol=1e-4, atol=1e-4)


def test_yolo_detections_match_cv2_dnn(sim_frames):
    fast, reference = (
        load_detector("yolo", backend="onnxruntime"),
        load_detector("yolo", backend="reference"),
    )
    images = sim_frames + [load() for _, load, *_ in SCENES]
    images += [disk_blur(image, 4) for image in images[-3:]]
    compared = 0
    for image in images:
        got, want = fast.detect(image), reference.detect(image)
        assert [d.class_name for d in got] == [d.class_name for d in want]
        for g, w in zip(got, want, strict=True):
            assert abs(g.score - w.score) <= 0.01
            assert np.max(np.abs(np.subtract(g.box, w.box))) <= 1.0
            compared += 1
    assert compared >= 6  # the scenes were detected, so boxes were compared


def test_any_darknet_cfg_converts(tmp_path):
    # a small cfg of every supported layer, random weights in darknet's format
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(
        "[net]\nwidth=64\nheight=64\nchannels=3\n"
        "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[shortcut]\nfrom=-2\nactivation=linear\n"
        "[maxpool]\nsize=2\nstride=1\n"
        "[convolutional]\nfilters=21\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n"
        "[route]\nlayers=-3\n"
        "[upsample]\nstride=2\n"
        "[route]\nlayers=-1,0\n"
        "[convolutional]\nfilters=21\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n"
    )
    rng = np.random.default_rng(0)
    sizes = [8 * 4 + 8 * 3 * 9, 8 * 4 + 8 * 8 * 9, 21 + 21 * 8, 21 + 21 * 16]
    values = []
    for size in sizes:
        chunk = rng.normal(0, 0.3, size).astype(np.float32)
        values.append(chunk)
    weights = np.concatenate(values)
    # batch-norm variances must be positive: they sit at [24:32] of the first two layers
    for start in (0, sizes[0]):
        weights[start + 24 : start + 32] = np.abs(weights[start + 24 : start + 32]) + 0.5
    path = tmp_path / "tiny.weights"
    with open(path, "wb") as handle:
        np.array([0, 2, 0], np.int32).tofile(handle)
        np.array([0], np.int64).tofile(handle)
        weights.tofile(handle)
    names = tmp_path / "coco.names"
    names.write_text("a\nb\n")
    options = dict(weights=path, cfg=cfg, names=names, input_size_px=64, score_threshold=0.3)
    fast = load_detector("yolo", backend="onnxruntime", **options)
    reference = load_detector("yolo", backend="reference", **options)
    image = rng.integers(0, 255, (80, 100), dtype=np.uint8)
    got, want = fast.detect(image), reference.detect(image)
    assert len(want) > 0
    assert [(d.class_name, d.box) for d in got] == [(d.class_name, d.box) for d in want]
    np.testing.assert_allclose([d.score for d in got], [d.score for d in want], atol=1e-3)


def test_cache_rebuilt_when_source_changes_or_file_is_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path))
    builds = []

    def build(out):
        builds.append(out)
        import onnx

        node = onnx.helper.make_node("Identity", ["x"], ["y"])
        value = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
        out_value = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
        graph = onnx.helper.make_graph([node], "g", [value], [out_value])
        onnx.save(onnx.helper.make_model(graph), str(out))

    key = onnx_runtime.model_key(["a" * 64], "v1")
    path = onnx_runtime.cached_onnx("toy", key, build)
    assert onnx_runtime.cached_onnx("toy", key, build) == path and len(builds) == 1
    other = onnx_runtime.cached_onnx("toy", onnx_runtime.model_key(["b" * 64], "v1"), build)
    assert other != path and len(builds) == 2  # a new source checksum: a new model
    path.write_bytes(path.read_bytes()[:-3])  # damaged on disk
    assert onnx_runtime.cached_onnx("toy", key, build) == path and len(builds) == 3
    session = onnx_runtime.cached_session("toy", key, build)
    assert session.run(None, {"x": np.array([2.0], np.float32)})[0][0] == 2.0


def test_a_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="Delete the file to rebuild it"):
        onnx_runtime.inference_session(bad)


def test_backend_names():
    assert onnx_runtime.resolve_backend("auto", ("onnxruntime", "reference"), "m") == "onnxruntime"
    with pytest.raises(ConfigError, match="unknown backend"):
        onnx_runtime.resolve_backend("tensorrt", ("reference",), "m")
    with pytest.raises(ConfigError, match="has no onnxruntime backend"):
        onnx_runtime.resolve_backend("onnxruntime", ("reference",), "mtcnn")
