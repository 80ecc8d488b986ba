"""``dasha serve``: a live view of the camera in a web page (FastAPI + MJPEG)."""
