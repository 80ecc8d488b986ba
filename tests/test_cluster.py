"""Training on a Ray cluster: fragments sized to the env's speed, the token, and a real
cluster started on loopback with ``ray start --head`` (token authentication on), trained on
through ``dasha train --ray-address`` with two remote env runners."""

from __future__ import annotations

import itertools
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dasha.agents.cluster import check_cluster, client_token
from dasha.agents.sampling import RLLIB_SAMPLE_TIMEOUT_S, SPEED_MARGIN, plan_sampling
from dasha.cli import app, register_all
from dasha.errors import ConfigError

register_all()
ROOT = Path(__file__).resolve().parents[1]
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.mark.parametrize("batch", [64, 100, 512, 4000])
@pytest.mark.parametrize("runners", [1, 2, 3, 8])
@pytest.mark.parametrize("speed", [0.01, 0.5, 1.83, 7.0, 30.0, 1000.0])
def test_a_fragment_fits_the_sample_timeout_with_a_margin(batch, runners, speed) -> None:
    plan = plan_sampling(batch, runners, speed, warmup_s=2.0)
    assert plan.fragment_steps >= 1
    assert plan.sample_timeout_s >= RLLIB_SAMPLE_TIMEOUT_S
    # even SPEED_MARGIN times slower than planned, the first fragment (warm-up too) fits
    assert SPEED_MARGIN * plan.fragment_s + plan.warmup_s <= plan.sample_timeout_s
    # whole rounds of all runners fill the batch, overshooting by less than one step a runner
    rounds = math.ceil(batch / (runners * plan.fragment_steps))
    assert batch <= rounds * runners * plan.fragment_steps < batch + rounds * runners
    if speed * RLLIB_SAMPLE_TIMEOUT_S / SPEED_MARGIN >= math.ceil(batch / runners):
        assert plan.fragment_steps == math.ceil(batch / runners)  # RLlib's "auto": one round


def test_the_reported_case_no_longer_drops_every_fragment() -> None:
    # one runner, the 512-step batch, 7 env steps/s: "auto" (512 steps, 73 s) missed 60 s
    plan = plan_sampling(512, 1, 7.0)
    assert plan.fragment_steps == 103 and plan.fragment_s < 15
    assert plan.sample_timeout_s == RLLIB_SAMPLE_TIMEOUT_S
    slow = plan_sampling(512, 2, 0.02)  # 50 s a step: one-step fragments, a longer timeout
    assert (slow.fragment_steps, slow.sample_timeout_s) == (1, 200)
    assert "lower --env-steps-per-s" in str(plan.stalled(3))


@pytest.fixture
def no_token(monkeypatch, tmp_path) -> None:
    """No token anywhere Ray looks (an empty home), no RAY_AUTH_MODE."""
    for name in AUTH_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_the_client_presents_a_token_only_where_ray_would_find_one(no_token, monkeypatch, tmp_path):
    assert client_token() == (None, "~/.ray/auth_token")
    (tmp_path / "home" / ".ray").mkdir(parents=True)
    (tmp_path / "home" / ".ray" / "auth_token").write_text("fromhome")
    assert client_token() == ("fromhome", "~/.ray/auth_token")
    (tmp_path / "token").write_text("frompath")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert client_token() == ("frompath", f"RAY_AUTH_TOKEN_PATH ({tmp_path / 'token'})")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "fromvar")
    assert client_token() == ("fromvar", "RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit mode is obeyed
    assert client_token() == (None, "RAY_AUTH_MODE=disabled")


def test_a_missing_token_is_a_clear_error(no_token, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="cannot be read or is empty"):
        client_token()
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(
        ConfigError, match=r"RAY_AUTH_MODE=token but no Ray auth token.*get-auth-token"
    ):
        client_token()


def test_a_port_that_is_not_a_ray_head_is_refused(tmp_path) -> None:
    """A gRPC server without Ray's GCS service (as the Ray Client port is) is no head."""
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(ConfigError, match="not as a Ray head"):
            check_cluster(f"127.0.0.1:{port}")
    finally:
        server.stop(0)


# --- a real cluster ------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    assert found, "the `ray` command of ray[rllib] is not installed"
    return found


def _stop(head: subprocess.Popen, temp_dir: Path) -> None:
    """Stop this cluster only (``ray stop`` would stop every Ray on the machine): SIGTERM to
    ``ray start --block`` drains its node and ends the processes it started; whatever of its
    session is left is killed by process id."""
    import psutil

    if head.poll() is None:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
    for proc in psutil.process_iter(["cmdline"]):
        if str(temp_dir) in " ".join(proc.info["cmdline"] or ()):
            proc.kill()


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """A Ray head on 127.0.0.1, started as Ray's docs say (``RAY_AUTH_MODE=token``, the token
    in a file named by ``RAY_AUTH_TOKEN_PATH``), with 2 CPUs for 2 env runners."""
    temp_dir = Path(tempfile.mkdtemp(prefix="dasha-ray-", dir="/tmp"))  # short: socket paths
    token = temp_dir / "auth_token"
    token.write_text(secrets.token_hex(32))
    gcs, client, dashboard, agent = _free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    log = (temp_dir / "head.log").open("w")
    head = subprocess.Popen(
        [_ray_executable(), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(gcs), "--ray-client-server-port", str(client),
         "--dashboard-port", str(dashboard), "--dashboard-agent-listen-port", str(agent),
         "--include-dashboard", "false", "--disable-usage-stats", "--num-cpus", "2",
         "--temp-dir", str(temp_dir / "ray")],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (temp_dir / "head.log").read_text():
            assert head.poll() is None, (temp_dir / "head.log").read_text()
            assert time.monotonic() < deadline, "ray start --head did not start in 120 s"
            time.sleep(0.5)
        yield {"address": f"127.0.0.1:{gcs}", "token_file": str(token)}
    finally:
        _stop(head, temp_dir)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _client_env(**auth: str) -> dict[str, str]:
    """The environment of a user's shell: no RAY_AUTH_MODE (as after `ray start --head`),
    the given token variables, this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, **auth, "PYTHONPATH": str(ROOT / "src")}


@pytest.mark.slow
def test_training_on_a_token_cluster_with_two_env_runners(cluster, tmp_path) -> None:
    out = tmp_path / "run"
    steps = 300
    proc = subprocess.run(
        [sys.executable, "-m", "dasha", "train", "--out", str(out), "--ray-address",
         cluster["address"], "--env-runners", "2", "--steps", str(steps), "--batch-steps", "100",
         "--scene", "cameraman", "--json"],
        env=_client_env(RAY_AUTH_TOKEN_PATH=cluster["token_file"]),
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "presenting the Ray auth token from RAY_AUTH_TOKEN_PATH" in proc.stderr
    assert "Connected to Ray cluster" in proc.stderr  # the cluster's, not a private local Ray
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["env_steps"] >= steps
    assert summary["sampling"]["measured"] and summary["sampling"]["fragment_steps"] >= 1
    curve = json.loads((out / "curve.json").read_text())
    totals = [0] + [c["env_steps"] for c in curve]
    sampled = [b - a for a, b in itertools.pairwise(totals)]
    assert min(sampled) >= 100, sampled  # every iteration filled its batch: nothing dropped
    assert (out / "policies" / "focus.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"RAY_AUTH_TOKEN": "not-the-token"}, "refused the Ray auth token from RAY_AUTH_TOKEN"),
        ({}, "requires a Ray auth token and this client has none"),
        ({"RAY_AUTH_MODE": "disabled"}, "RAY_AUTH_MODE=disabled here: unset it"),
    ],
)
def test_a_wrong_or_missing_token_is_a_clear_error(
    cluster, no_token, monkeypatch, tmp_path, auth, message
):
    for name, value in auth.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "run"
    start = time.monotonic()
    result = CliRunner().invoke(app, ["train", "--out", str(out), "--ray-address", cluster["address"],
                                      "--env-runners", "2"])  # fmt: skip
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message in text and "ray get-auth-token" in text
    assert time.monotonic() - start < 10 and not out.exists()  # not Ray's 20 s of retries


@pytest.mark.slow
def test_train_bench_measures_remote_runners_and_their_ratio() -> None:
    from dasha.agents.train_bench import bench_training

    result = bench_training(["onnxruntime"], [1, 2], steps=32, batch_steps=32)
    for runners in (1, 2):
        run = result[f"env_runners_{runners}"]
        assert run["timed_steps"]["onnxruntime"] >= 32 and run["steps_per_s"]["onnxruntime"] > 0
        assert run["sampling"]["onnxruntime"]["fragment_steps"] <= 32 // runners
    assert result["speedup_over_env_runners_1"]["env_runners_2"]["onnxruntime"] > 0
