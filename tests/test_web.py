"""``dasha serve``: the JSON API (same controls and errors as ``Camera.set_controls``), a
real headless Chromium driving the page, the MJPEG streams, and Ctrl-C parking the lens."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dasha.camera.api import open_camera
from dasha.errors import ConfigError
from dasha.web.app import BOUNDARY, create_app
from dasha.web.browser import tour_page
from dasha.web.frames import RecentFrames
from dasha.web.server import check_address
from dasha.web.state import LiveCamera, dasha_mover

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ in-process API
@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    cam = open_camera("sim", scene="motorcycle", distance_cm=170)
    live = LiveCamera(cam, speed=0.0, max_fps=200.0)  # as fast as it renders: a quick test
    live.start()
    try:
        with TestClient(create_app(live)) as c:
            yield c
    finally:
        live.stop()
        cam.close()


def wait_state(client: TestClient, done, timeout_s: float = 30.0) -> dict:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        state = client.get("/api/state").json()
        if done(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"state not reached in {timeout_s} s: {state['af_state']}")


def test_bad_controls_answer_422_with_the_camera_api_message(client):
    before = client.get("/api/state").json()["controls"]
    cases = [
        (
            {"AfMode": "bogus"},
            "AfMode='bogus' is not valid; choose one of: manual, auto, continuous",
        ),
        ({"Focus": 1}, "unknown control(s) Focus; valid controls: AfMode, AfTrigger"),
        ({"AfMode": "auto", "LensPosition": 99}, "LensPosition=99 dpt is outside [-5, 15] dpt"),
        ({"AfWindows": [[0, 0, 900, 10]]}, "AfWindows: box [0, 0, 900, 10] must satisfy"),
    ]
    for controls, message in cases:
        r = client.post("/api/controls", json=controls)
        assert r.status_code == 422, r.text
        assert message in r.json()["detail"]
    # Validated before anything is applied (AfMode 'auto' came with the bad LensPosition).
    assert client.get("/api/state").json()["controls"] == before
    r = client.post("/api/trigger", json={"AfTrigger": "later"})
    assert r.status_code == 422 and "AfTrigger='later' is not valid" in r.json()["detail"]
    # Manual mode: the lens goes where it is told (dioptres), the device unit beside it.
    assert client.post("/api/controls", json={"LensPosition": 0.5}).status_code == 200
    state = wait_state(client, lambda s: abs(s["frame"]["LensPosition"] - 0.5) < 1e-9)
    assert state["lens"]["unit"] == "V" and state["lens"]["device"] > 24
    r = client.post("/api/sim", json={"distance_cm": 5})
    assert r.status_code == 422 and "distance_cm=5.0 must be between 10" in r.json()["detail"]
    r = client.post("/api/sim", json={"scene": "nowhere"})
    assert r.status_code == 422 and "unknown scene 'nowhere'" in r.json()["detail"]
    assert client.get("/api/state").json()["sim"]["scene"] == "motorcycle"


def test_trigger_reaches_focused_with_coarse_fine(client):
    r = client.post("/api/controls", json={"AfMode": "auto", "AfAlgorithm": "coarse-fine"})
    assert r.status_code == 200
    assert client.post("/api/trigger").status_code == 200
    state = wait_state(client, lambda s: s["cycles"] and s["current_cycle"] is None)
    cycle = state["cycles"][-1]
    assert state["af_state"] == cycle["state"] == "Focused", cycle["fail_reason"]
    assert cycle["truth"]["in_focus"]
    whos = {m["who"] for m in cycle["moves"]}
    assert whos == {"ae:once", "coarse-fine"}
    lens = [m for m in cycle["moves"] if m["what"] == "lens"]
    assert len(lens) == cycle["lens_moves"] > 5
    assert lens[-1]["to_dpt"] == pytest.approx(state["lens"]["dpt"])
    assert state["histogram"]["suitable"] == [50.0, 150.0]
    assert client.get("/api/frame.jpg").content[:2] == b"\xff\xd8"  # a JPEG
    # The simulator's sliders move the world the next frames show.
    assert (
        client.post("/api/sim", json={"distance_cm": 150, "illuminance_lux": 200}).status_code
        == 200
    )
    state = wait_state(client, lambda s: s["frame"]["Truth"]["distance_cm"] == 150)
    assert state["sim"]["illuminance_lux"] == 200


def test_cancel_stops_a_running_cycle_back_to_idle():
    with open_camera("sim") as cam:
        live = LiveCamera(cam, speed=1.0)  # real time: the ~3 s scan is still running
        live.start()
        try:
            client = TestClient(create_app(live))  # no lifespan: the app has none
            client.post("/api/controls", json={"AfMode": "auto"})
            client.post("/api/trigger")
            wait_state(client, lambda s: s["af_state"] == "Scanning")
            time.sleep(0.3)
            assert client.post("/api/controls", json={"AfTrigger": "cancel"}).status_code == 200
            state = wait_state(client, lambda s: s["cycles"], timeout_s=5)
        finally:
            live.stop()
    assert state["af_state"] == "Idle"
    assert state["cycles"][-1]["fail_reason"] == "cancelled"
    assert state["cycles"][-1]["duration_s"] < 2.0  # camera time: stopped well before the end


def test_continuous_mode_follows_the_distance_slider(client):
    assert client.post("/api/controls", json={"AfMode": "continuous"}).status_code == 200
    state = wait_state(
        client, lambda s: s["cycles"][-1]["reason"] == "start" and not s["current_cycle"]
    )
    assert state["cycles"][-1]["state"] == "Focused", state["cycles"][-1]
    assert client.post("/api/sim", json={"distance_cm": 190}).status_code == 200
    state = wait_state(
        client,
        lambda s: s["cycles"][-1]["truth"]["distance_cm"] == 190 and not s["current_cycle"],
    )
    cycle = state["cycles"][-1]
    assert cycle["reason"] != "start" and cycle["state"] == "Focused"
    assert cycle["truth"]["in_focus"], cycle["truth"]
    assert client.post("/api/controls", json={"AfMode": "manual"}).status_code == 200


def test_recent_frames_index_like_the_whole_timeline():
    frames = RecentFrames([], keep=3)
    for i in range(10):
        frames.append({"FrameIndex": i})
    assert len(frames) == 10 and frames[-1]["FrameIndex"] == 9 and frames[7]["FrameIndex"] == 7
    assert [m["FrameIndex"] for m in frames[7:]] == [7, 8, 9]
    assert [m["FrameIndex"] for m in frames[8:9]] == [8]
    with pytest.raises(IndexError, match="no longer kept"):
        frames[0]


def test_dasha_moves_are_told_apart():
    # The episode's reset moves before its first frame; then A_H exposes, A_L moves the lens.
    assert dasha_mover({"frame": 10, "what": "lens"}, start_frame=10) == "reset"
    assert dasha_mover({"frame": 11, "what": "exposure"}, start_frame=10) == "A_H"
    assert dasha_mover({"frame": 12, "what": "lens"}, start_frame=10) == "A_L"


# ------------------------------------------------------------------ `dasha serve` + Chromium
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def test_addresses_are_checked_before_the_camera_opens():
    port = free_port()
    assert check_address("127.0.0.1", port) is True
    assert check_address("localhost", port) is True
    assert check_address("0.0.0.0", port) is False  # serve warns: it exposes the camera
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(ConfigError, match=re.escape(f"cannot listen on 127.0.0.1:{port}")):
            check_address("127.0.0.1", port)
    with pytest.raises(ConfigError, match=re.escape("1..65535")):
        check_address("127.0.0.1", 70000)
    with pytest.raises(ConfigError, match="not an address"):
        check_address("no such host.invalid", port)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dasha", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    end = time.monotonic() + 60
    while True:
        try:
            get_json(port, "/api/state")
            break
        except (OSError, AssertionError):
            if proc.poll() is not None or time.monotonic() > end:
                proc.kill()
                pytest.fail(f"dasha serve did not start: {proc.communicate()[0]}")
            time.sleep(0.2)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def count_frames(port: int, seconds: float, counts: list[int], k: int) -> None:
    """Read one MJPEG stream (a tab) for ``seconds``; frames received into counts[k]."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream.mjpg")
    response = conn.getresponse()
    marker, data, end = f"--{BOUNDARY}".encode(), b"", time.monotonic() + seconds
    while time.monotonic() < end:
        data += response.read1(65536)
    counts[k] = data.count(marker)
    conn.close()  # the tab closes


def test_two_tabs_stream_at_least_10_frames_per_s_and_free_their_streams(server):
    _, port = server
    seconds, counts = 3.0, [0, 0]
    tabs = [threading.Thread(target=count_frames, args=(port, seconds, counts, k)) for k in (0, 1)]
    for t in tabs:
        t.start()
    time.sleep(1.5)
    assert get_json(port, "/api/state")["streams"] == 2
    for t in tabs:
        t.join()
    print(f"MJPEG frames/s per tab: {[c / seconds for c in counts]}")
    assert min(counts) / seconds >= 10
    end = time.monotonic() + 5
    while get_json(port, "/api/state")["streams"] and time.monotonic() < end:
        time.sleep(0.1)
    assert get_json(port, "/api/state")["streams"] == 0


def test_chromium_triggers_a_cycle_while_other_clients_poll(server):
    _, port = server
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll() -> None:  # other clients reading the state while the cycle runs
        while not stop.is_set():
            try:
                seen.append(get_json(port, "/api/state")["af_state"])
            except BaseException as exc:
                errors.append(exc)
            time.sleep(0.02)

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for t in pollers:
        t.start()
    try:
        shown = tour_page(
            f"http://127.0.0.1:{port}/",
            screenshot_png=Path(os.environ["DASHA_WEB_SCREENSHOT"])
            if "DASHA_WEB_SCREENSHOT" in os.environ
            else None,
            timeout_s=30,
        )
    finally:
        stop.set()
        for t in pollers:
            t.join()
    assert not errors, errors[:1]
    assert shown["state"] == "Focused", shown
    assert shown["moves"] > 5 and "stop reason: focused" in shown["caption"]
    assert "AfWindows" in shown["message"] or "/api/trigger" in shown["message"]
    assert shown["frame_change"] > 1.0  # blurred before the cycle, sharp after (0..255)
    assert "Scanning" in seen and seen[-1] == "Focused"
    state = get_json(port, "/api/state")
    window = state["controls"]["AfWindows"]
    assert len(window) == 1 and state["frame"]["AfWindow"] == window[0]  # the dragged box


def post_json(port: int, path: str, body: dict) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_ctrl_c_mid_cycle_stops_the_server_with_the_lens_parked(server):
    proc, port = server
    assert post_json(port, "/api/trigger", {}) == 200
    end = time.monotonic() + 10
    while get_json(port, "/api/state")["af_state"] != "Scanning":
        assert time.monotonic() < end, "the cycle did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out
    assert "stopped; lens parked: now at 24 V, its safe value is 24 V" in out
    assert "Traceback" not in out
