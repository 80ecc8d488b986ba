"""DASHA as a camera control: ``open_camera``, picamera2-style controls and metadata,
bounded AF cycles and continuous AF (``api``, ``controls``, ``continuous``, ``cycle``)."""

from dasha.camera.api import Camera, CapturedFrame, open_camera
from dasha.camera.continuous import RetriggerTunables

__all__ = ["Camera", "CapturedFrame", "RetriggerTunables", "open_camera"]
