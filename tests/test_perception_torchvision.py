import numpy as np
import pytest
import torch

from dasha.errors import ConfigError
from dasha.perception._torchvision import import_torchvision, nms_reference


def brute_force_nms(boxes, scores, threshold):
    tv = import_torchvision()
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        ious = [float(tv.ops.box_iou(boxes[i : i + 1], boxes[k : k + 1])) for k in keep]
        if all(v <= threshold for v in ious):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_brute_force(seed):
    tv = import_torchvision()
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(60, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(60, 2, generator=gen) * 40], dim=1)
    scores = torch.rand(60, generator=gen)
    expected = brute_force_nms(boxes, scores, 0.5)
    assert nms_reference(boxes, scores, 0.5).tolist() == expected
    assert tv.ops.nms(boxes, scores, 0.5).tolist() == expected


@pytest.fixture
def empty_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DASHA_DOWNLOAD", "0")
    return tmp_path


def _save_random_state(builder, path, **kwargs):
    tv = import_torchvision()
    model = builder(tv)(weights=None, **kwargs)
    torch.save(model.state_dict(), path)
    return path


def test_resnet152_loads_local_file_and_errors_without(empty_torch_cache):
    from dasha.perception.encoder import load_encoder

    with pytest.raises(ConfigError, match=r"resnet152-.*\.pth.*https://download\.pytorch\.org"):
        load_encoder("resnet152")
    path = _save_random_state(lambda tv: tv.models.resnet152, empty_torch_cache / "r152.pth")
    encoder = load_encoder("resnet152", weights=path)
    assert encoder.encode(np.zeros((64, 64), np.uint8)).shape == (2048,)
    with pytest.raises(ConfigError, match="not found"):
        load_encoder("resnet152", weights=empty_torch_cache / "missing.pth")


@pytest.mark.parametrize(
    ("name", "builder"),
    [
        ("faster-rcnn", lambda tv: tv.models.detection.fasterrcnn_resnet50_fpn),
        ("retinanet", lambda tv: tv.models.detection.retinanet_resnet50_fpn),
    ],
)
def test_torchvision_detectors_load_local_file_and_error_without(empty_torch_cache, name, builder):
    from dasha.perception.detectors import load_detector

    with pytest.raises(ConfigError, match=r"coco.*\.pth.*https://download\.pytorch\.org"):
        load_detector(name, target="car")
    path = empty_torch_cache / f"{name}.pth"
    _save_random_state(builder, path, weights_backbone=None, num_classes=91)
    detector = load_detector(name, weights=path, target="car", score_threshold=0.99)
    assert "motorbike" in detector.classes
    assert isinstance(detector.detect(np.zeros((96, 128), np.uint8)), list)
    # a state dict of another model is refused, not half-loaded
    with pytest.raises(ConfigError, match="do not fit"):
        other = _save_random_state(lambda tv: tv.models.resnet18, empty_torch_cache / "r18.pth")
        load_detector(name, weights=other)
