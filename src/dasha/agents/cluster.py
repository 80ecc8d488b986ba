"""Joining Ray for training: a private local Ray, or a cluster by its address and token.

Ray 2.60's token authentication (https://docs.ray.io/en/latest/ray-security/token-auth.html):
a head started with ``RAY_AUTH_MODE=token``, or by ``ray start --head`` with that variable
unset while a token exists, refuses every caller that does not present its token. Ray reads
the token from ``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH`` names, else
``~/.ray/auth_token`` (``ray get-auth-token --generate`` writes that file, and so does any
local ``ray.init()``, such as a local ``dasha train``). A client joining by an explicit
address presents it only under ``RAY_AUTH_MODE=token``; without that the head answers
"InvalidAuthToken" and ``ray.init`` gives up after ~20 s of retries with a bare "Failed to
connect to Ray cluster".

DASHA applies the head's own rule to the client: with ``RAY_AUTH_MODE`` unset and a token
at hand, it presents that token (a head without authentication ignores it). An explicit
``RAY_AUTH_MODE`` is obeyed, and authentication is never turned off. Before ``ray.init``,
one gRPC call to the head (``GetClusterId``, the call ``ray.init`` starts with) tells within
milliseconds whether the address is a Ray head and whether it takes the token, so that each
failure has its own message.

The cluster's workers run the driver's ``dasha`` (shipped as a Ray runtime-env ``py_modules``
package); its dependencies (``pip install "dasha[rl]"``, the same Ray) must be installed on
every node.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dasha.errors import ConfigError, require

AUTH_MODE_VAR = "RAY_AUTH_MODE"
TOKEN_VAR = "RAY_AUTH_TOKEN"
TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = "~/.ray/auth_token"
PROBE_TIMEOUT_S = 10.0
WHERE_TOKENS_GO = (
    f"`ray get-auth-token` on the head prints its token: put it in {DEFAULT_TOKEN_FILE}, or "
    f"in a file named by {TOKEN_PATH_VAR}, or in {TOKEN_VAR}"
)


def token_source() -> str:
    """Where Ray reads the token from here, in its order of precedence (for messages)."""
    if os.environ.get(TOKEN_VAR):
        return TOKEN_VAR
    if os.environ.get(TOKEN_PATH_VAR):
        return f"{TOKEN_PATH_VAR} ({os.environ[TOKEN_PATH_VAR]})"
    return DEFAULT_TOKEN_FILE


def client_token() -> tuple[str | None, str]:
    """The token this client will present to a cluster (``None``: none) and its source.

    Read by Ray's own loader, so it is the token ``ray.init`` sends. ``RAY_AUTH_MODE`` other
    than ``token`` means none; unset, the token is presented when there is one."""
    raylet = require("ray._raylet", "rl")
    mode = os.environ.get(AUTH_MODE_VAR)
    if mode is not None and mode.lower() != "token":
        return None, f"{AUTH_MODE_VAR}={mode}"
    loader = raylet.AuthenticationTokenLoader.instance()
    loader.reset_cache()  # the environment may have changed since Ray last looked
    source = token_source()
    try:
        found = loader.has_token(ignore_auth_mode=True)
    except raylet.AuthenticationError as exc:  # RAY_AUTH_TOKEN_PATH names no readable file
        raise ConfigError(
            f"{source}: cannot be read or is empty; point it at the head's token file or "
            f"unset it ({WHERE_TOKENS_GO})"
        ) from exc
    if not found:
        if mode is not None:
            raise ConfigError(
                f"{AUTH_MODE_VAR}=token but no Ray auth token here: {WHERE_TOKENS_GO}"
            )
        return None, source
    return str(loader.get_raw_token(ignore_auth_mode=True)), source


def _present_token() -> None:
    """Make this process present the token (what ``ray start --head`` does to itself when a
    token exists): the mode is read from the environment into Ray's cached config."""
    os.environ[AUTH_MODE_VAR] = "token"
    require("ray._raylet", "rl").Config.initialize("")


def check_reachable(address: str) -> None:
    """A ``host:port`` that nothing answers on fails in seconds here, not after Ray's minute
    of retries."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"--ray-address {address}: nothing answers there ({exc}); start the cluster "
            "(`ray start --head` prints its address) or leave the option out to train locally"
        ) from exc


def check_cluster(address: str) -> None:
    """Refuse, with what to do, an address that is not a Ray head or whose head refuses the
    token this client would present. Ray Client (``ray://``) and TLS clusters are left to
    ``ray.init``."""
    check_reachable(address)
    tls = os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")
    if address == "auto" or address.startswith("ray://") or tls or ":" not in address:
        return
    token, source = client_token()
    grpc = require("grpc", "rl")
    gcs = require("ray.core.generated.gcs_service_pb2", "rl")
    stubs = require("ray.core.generated.gcs_service_pb2_grpc", "rl")
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(address) as channel:
        try:
            stubs.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs.GetClusterIdRequest(), metadata=metadata, timeout=PROBE_TIMEOUT_S
            )
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise ConfigError(_refused(address, token, source)) from exc
            if code == grpc.StatusCode.UNIMPLEMENTED:
                raise ConfigError(
                    f"--ray-address {address}: answers, but not as a Ray head: give the "
                    "address `ray start --head` printed (`ray start --address='HOST:PORT'`; "
                    "port 6379 unless --port was given)"
                ) from exc
            # Anything else (a slow head, a proxy): ray.init says what it finds.


def _refused(address: str, token: str | None, source: str) -> str:
    if token is not None:
        return (
            f"--ray-address {address}: the cluster refused the Ray auth token from {source}: "
            f"it is not the head's; {WHERE_TOKENS_GO}"
        )
    told = (
        f" ({source} here: unset it or set it to token)" if source.startswith(AUTH_MODE_VAR) else ""
    )
    return (
        f"--ray-address {address}: the cluster requires a Ray auth token and this client has "
        f"none{told}; {WHERE_TOKENS_GO}"
    )


def _code_runtime_env() -> dict[str, object]:
    """The driver's ``dasha`` package for the cluster's workers, so they run this code."""
    import dasha

    return {"py_modules": [str(Path(dasha.__file__).parent)], "excludes": ["__pycache__"]}


def init_ray(address: str | None) -> None:
    """Join the cluster at ``address`` (presenting the token, see the module docstring), or
    start a private local Ray."""
    ray = require("ray", "rl")
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if address:
        token, source = client_token()
        if token is not None and AUTH_MODE_VAR not in os.environ:
            sys.stderr.write(f"presenting the Ray auth token from {source} to {address}\n")
            _present_token()
        try:
            ray.init(address=address, log_to_driver=False, runtime_env=_code_runtime_env())
        except Exception as exc:  # ConnectionError, auth, version mismatch: all the user's to fix
            raise ConfigError(
                f"--ray-address {address}: cannot join that Ray cluster ({str(exc)[:300]}); "
                "check the address, its token and that the head runs the same Ray version, "
                "or leave the option out to train locally"
            ) from exc
        return
    if os.environ.get("RAY_ADDRESS") or Path("/tmp/ray/ray_current_cluster").exists():
        sys.stderr.write(
            "a Ray cluster is running on this machine (or RAY_ADDRESS is set): training "
            "starts its own local Ray and leaves it alone; --ray-address auto uses it\n"
        )
    # address="local": a private Ray for this run, never a cluster found on the machine.
    ray.init(
        address="local",
        num_cpus=os.cpu_count() or 2,
        include_dashboard=False,
        log_to_driver=False,
    )
