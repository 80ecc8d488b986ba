import cv2
import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.perception.detectors import Detection, best, load_detector
from perception_scenes import SCENES, disk_blur, iou


@pytest.fixture(scope="module")
def yolo():
    return load_detector("yolo")  # fetches and caches YOLOv3-tiny on first use


@pytest.mark.parametrize(("name", "load", "target", "box"), SCENES, ids=[s[0] for s in SCENES])
def test_scene_detected_sharp_lost_defocused(yolo, name, load, target, box):
    image = load()
    yolo.target = target
    found = yolo.detect_target(image)
    assert found is not None and found.score >= 0.5, f"{name}: {found}"
    assert iou(found.box, box) > 0.8
    # strong defocus, as a frame far from focus: blur diameter ~5% of the frame height
    radius_px = max(12, image.shape[0] // 20)
    assert yolo.detect_target(disk_blur(image, radius_px)) is None
    assert yolo.detect_target(cv2.GaussianBlur(image, (0, 0), image.shape[0] / 50)) is None


def test_mono_and_rgb_inputs_and_boxes_in_image_pixels(yolo):
    _, load, target, _ = SCENES[1]
    yolo.target = target
    gray = load()
    found_gray = yolo.detect_target(gray)
    found_rgb = yolo.detect_target(np.repeat(gray[:, :, None], 3, axis=2))
    assert found_gray == found_rgb
    x1, y1, x2, y2 = found_gray.box
    assert 0 <= x1 < x2 <= gray.shape[1] and 0 <= y1 < y2 <= gray.shape[0]


def test_unknown_names_are_clear_errors(yolo):
    with pytest.raises(ConfigError, match="unknown detector"):
        load_detector("yolo9000")
    with pytest.raises(ConfigError, match="does not know the class"):
        yolo.target = "unicorn"


def test_best_picks_highest_score_of_class():
    dets = [Detection("car", 0.4, (0, 0, 1, 1)), Detection("person", 0.9, (0, 0, 1, 1))]
    dets.append(Detection("car", 0.7, (1, 1, 2, 2)))
    assert best(dets, "car").score == 0.7
    assert best(dets).class_name == "person"
    assert best(dets, "dog") is None
