"""ONNX Runtime: the models DASHA converts, where they are cached, how a session is opened.

Every ONNX model DASHA runs is built here on the machine from weights it already has (the
shipped EfficientNet-Lite0, the darknet YOLOv3-tiny, the npm CenterNet): nothing is
downloaded as ONNX. A built model is cached under ``cache_dir()/onnx`` in a file whose
name carries a key derived from the SHA-256 of its source weights and the converter's
version, so a change of either builds a new file instead of running a stale one.
Building writes to a temporary file and renames it into place, so a crash mid-export
never leaves a truncated model to be loaded next time; a ``.sha256`` file beside each
model records its own checksum, so a model damaged later (a disk error, a hand edit) is
noticed and rebuilt instead of run.

Backends are chosen by name (``BACKENDS``): ``onnxruntime``; ``onnxruntime-int8``, the same
graphs quantised to int8 (``perception.quantize``: static QDQ, calibrated on simulator
frames, cached beside the float models); ``reference`` (each model's own framework: torch
for the encoders, ``cv2.dnn`` for YOLO, the ``brisque`` package's feature code for BRISQUE);
or ``auto``, per model the first of its backends that the machine has: each model lists
its backends in that order, fastest first among those that keep the agents' results (so
float ONNX Runtime for the encoder, whose int8 features cost the exposure agent half its
successes; README, "Inference backends").
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dasha.errors import ConfigError
from dasha.io import write_bytes
from dasha.perception.cache import cache_dir, sha256_of

AUTO = "auto"
ONNXRUNTIME = "onnxruntime"
ONNXRUNTIME_INT8 = "onnxruntime-int8"
REFERENCE = "reference"
BACKENDS = (AUTO, ONNXRUNTIME, ONNXRUNTIME_INT8, REFERENCE)
ONNX_BACKENDS = (ONNXRUNTIME, ONNXRUNTIME_INT8)  # the ones that need ONNX Runtime
DEFAULT_BACKEND = AUTO


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(name: str, supported: tuple[str, ...], model: str) -> str:
    """The concrete backend (not ``auto``) that ``model`` runs on.

    ``supported`` lists the concrete backends the model has in ``auto``'s order of
    preference; ``auto`` takes the first one available here, a named backend the model
    lacks is an error.
    """
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name == AUTO:
        for candidate in supported:
            if candidate not in ONNX_BACKENDS or onnxruntime_available():
                return candidate
        require_onnxruntime()  # an onnxruntime-only model on a machine without it
    if name not in supported:
        raise ConfigError(
            f"{model} has no {name} backend; choose one of: {', '.join((AUTO, *supported))}"
        )
    return name


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


def model_key(source_sha256: Iterable[str], converter_version: str) -> str:
    """A short key for a converted model: changes when a source file or the converter does."""
    digest = hashlib.sha256(converter_version.encode())
    for sha in source_sha256:
        digest.update(sha.encode())
    return digest.hexdigest()[:16]


def cached_onnx(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The path of ONNX model ``name`` for ``key``, built by ``build(tmp_path)`` when missing.

    ``build`` writes a complete ONNX file at the path it is given; it is renamed into place
    only after it returns, so the cache holds finished models only.
    """
    out_dir = onnx_cache_dir()
    path = out_dir / f"{name}-{key}.onnx"
    if _intact(path):
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{name}-", suffix=".onnx")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        build(tmp)
        # the checksum first: a model without its record is rebuilt, never trusted
        write_bytes(_checksum_path(path), sha256_of(tmp).encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _intact(path: Path) -> bool:
    record = _checksum_path(path)
    if not (path.is_file() and record.is_file()):
        return False
    return record.read_text().strip() == sha256_of(path)


def cached_session(
    name: str, key: str, build: Callable[[Path], None], intra_op_threads: int | None = None
) -> Any:
    """An ONNX Runtime session of cached model ``name`` (built on first use; a damaged
    cached file is rebuilt)."""
    return inference_session(cached_onnx(name, key, build), intra_op_threads)


def default_intra_op_threads() -> int | None:
    """Threads per session: ``$DASHA_ORT_THREADS``, else ``$OMP_NUM_THREADS`` (Ray sets it to
    a worker's CPUs, so two env runners do not fight over the same cores), else the
    runtime's own default (one per physical core)."""
    for variable in ("DASHA_ORT_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def spin_within_run() -> bool:
    """Whether a session's worker threads spin-wait between the operators of one ``run``
    (``$DASHA_ORT_SPIN``: ``1`` or ``0``; default on).

    A woken worker costs a futex round trip per operator; EfficientNet-Lite0 has ~90 of
    them, and spinning through a run took its float forward pass from ~4.3 to ~3.0 ms on
    the idle 2-core machine. The workers stop spinning when ``run`` returns
    (``session.force_spinning_stop``), so nothing spins between frames. On cores another
    process keeps busy spinning is a gamble (5-12 ms against 5.6 ms measured with one core
    taken): set ``DASHA_ORT_SPIN=0`` there. With one intra-op thread (a Ray env runner gets
    ``OMP_NUM_THREADS=1``) there are no workers and the setting does nothing.
    """
    return os.environ.get("DASHA_ORT_SPIN", "1").strip() != "0"


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            'the onnxruntime backends need ONNX Runtime: pip install "dasha[perception]" '
            "(or choose --backend reference)"
        ) from exc
    return onnxruntime


def inference_session(path: Path, intra_op_threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with full graph optimisation.

    ``intra_op_threads``: ``None`` lets the runtime use its default (one per physical core);
    benchmarks pass 1 to compare backends core for core.
    """
    ort = require_onnxruntime()
    if intra_op_threads is None:
        intra_op_threads = default_intra_op_threads()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    spin = spin_within_run()
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if spin:  # ... and parked the moment ``run`` returns, so no core is held between frames
        options.add_session_config_entry("session.force_spinning_stop", "1")
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # a corrupt or foreign file: say which and how to recover
        raise ConfigError(
            f"ONNX Runtime could not load {path}: {exc}. Delete the file to rebuild it."
        ) from exc
