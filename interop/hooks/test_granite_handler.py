"""The granite-assets docs' FastAPI hook handler, run for real under uvicorn.

granite_hook_v1.py is the docs' handler as written: tusd v1's hook format (a `Hook-Name`
header, `body["Upload"]`). tusd v2 sends neither, so behind tusd v2.10.1 it accepts every
upload unchecked — the hole in the stack users run today. Behind tusgate the inline token check
runs before any hook, so bad tokens are refused whatever the hook does.

granite_hook_v2.py is the same handler adapted to v2 (`Type`, `Event.Upload`, and a refusal as
200 + RejectUpload + HTTPResponse): its pre-create rejection works behind both servers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from conftest import HERE, Process, create, free_port, new_secret, patch, upload_id

KEY, CONTENT_TYPE, VISIBILITY = "invoices/inv-001.txt", "text/plain", "private"
DATA = b"invoice body"
HOOK_PATH = "/tusd/hooks"


@dataclass
class HookApp:
    process: Process
    url: str

    def hook_calls(self) -> int:
        """POSTs uvicorn answered (its access log), i.e. hooks the server sent."""
        return self.process.log().count(f'"POST {HOOK_PATH} HTTP/1.1"')

    def stop(self) -> None:
        self.process.stop()


def start_hook_app(module: str, secret: str, workdir: Path) -> HookApp:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(HERE),
               "--host", "127.0.0.1", "--port", str(port), "--no-server-header"]
    env = {**os.environ, "UPLOAD_SECRET": secret}
    process = Process(f"uvicorn-{module}", command, workdir / f"{module}.log", env)
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if not process.alive() or time.monotonic() > deadline:
            process.stop()
            pytest.fail(f"uvicorn {module} did not start\n{process.log_tail()}", pytrace=False)
        time.sleep(0.1)
    return HookApp(process, f"http://127.0.0.1:{port}{HOOK_PATH}")


@pytest.fixture
def hook_app(tmp_path):
    apps: list[HookApp] = []

    def start(module: str, secret: str) -> HookApp:
        app = start_hook_app(module, secret, tmp_path)
        apps.append(app)
        return app
    yield start
    for app in apps:
        app.stop()


def token_metadata(secret: str, *, expires: int | None = None, token: str | None = None,
                   key: str = KEY) -> dict[str, str]:
    """granite-assets' Upload-Metadata fields (same formula as build_upload_url)."""
    expires = int(time.time()) + 3600 if expires is None else expires
    payload = f"{expires}:{key}:{VISIBILITY}:{CONTENT_TYPE}"
    good = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"asset-key": key, "visibility": VISIBILITY, "content-type": CONTENT_TYPE,
            "upload-expires": str(expires), "upload-token": good if token is None else token}


def granite_headers(secret: str) -> dict[str, str]:
    """A real build_upload_url() from granite-assets 0.1.7 (its creation headers)."""
    from granite_assets import LocalNginxAssetRepositoryConfig, build_asset_repository
    repo = build_asset_repository(LocalNginxAssetRepositoryConfig(
        storage_path="/nonexistent", base_url="http://127.0.0.1/assets",
        tusd_url="http://127.0.0.1", upload_secret=secret, secure_link_secret=secret,
        create_directories=False))
    return dict(repo.build_upload_url(KEY, CONTENT_TYPE).headers)


def bad(secret: str) -> dict[str, str]:
    return token_metadata(secret, token="0" * 64)


def expired(secret: str) -> dict[str, str]:
    return token_metadata(secret, expires=int(time.time()) - 60)


# --- (a) the docs' handler as written --------------------------------------------------------

def test_v1_handler_behind_tusd_accepts_bad_and_expired_tokens(servers, hook_app):
    """The hole: behind tusd v2 the docs' handler is asked (the hooks arrive) and waves
    through a forged token and an expired one; the forged upload completes."""
    secret = new_secret()
    app = hook_app("granite_hook_v1", secret)
    server = servers.start("tusd", app.url, events="pre-create,post-finish")
    forged = create(server, len(DATA), bad(secret))
    assert forged.status_code == 201, forged.text
    assert patch(forged.headers["Location"], 0, DATA).status_code == 204
    late = create(server, len(DATA), expired(secret))
    assert late.status_code == 201, late.text
    assert app.hook_calls() >= 2, "the handler was not even asked"


def test_v1_handler_behind_tusgate_tokens_still_refuse(servers, hook_app, tmp_path):
    """Behind tusgate (UPLOAD_SECRET set) the same handler changes nothing: tusgate checks the
    token before pre-create, so a forged, expired or missing token is refused and never reaches
    the hook; a valid one is accepted, published, and then notified."""
    secret = new_secret()
    app = hook_app("granite_hook_v1", secret)
    assets = tmp_path / "assets"
    server = servers.start("tusgate", app.url, "--assets-dir", str(assets),
                           events="pre-create,post-finish", tokenless=False,
                           env={"UPLOAD_SECRET": secret})
    for metadata, status in ((bad(secret), 403), (expired(secret), 400), ({"filename": "x"}, 403)):
        r = create(server, len(DATA), metadata)
        assert r.status_code == status, (metadata, r.status_code, r.text)
    assert app.hook_calls() == 0, "a refused token reached the hook"
    r = create(server, len(DATA), None, headers=granite_headers(secret))
    assert r.status_code == 201, r.text
    assert patch(r.headers["Location"], 0, DATA).status_code == 204
    assert (assets / VISIBILITY / KEY).read_bytes() == DATA
    deadline = time.monotonic() + 10
    while app.hook_calls() < 2:   # pre-create + post-finish
        assert time.monotonic() < deadline, app.process.log_tail()
        time.sleep(0.1)


# --- (b) adapted to tusd v2's format ---------------------------------------------------------

def test_v2_handler_rejects_behind_tusd_and_tusgate(kind, servers, hook_app):
    """The unchanged tusd command line (tusgate: + -allow-uploads-without-token, no
    UPLOAD_SECRET: the hook is the only check, as under tusd). The adapted handler's refusals
    reach the client with its status and message: no token and no expiry -> 400 (expired),
    an expiry but no token -> 403."""
    secret = new_secret()
    app = hook_app("granite_hook_v2", secret)
    server = servers.start(kind, app.url, events="pre-create,post-finish")
    r = create(server, len(DATA), {"filename": "no-token.txt"})
    assert (r.status_code, r.text) == (400, "Upload token expired")
    no_token = {k: v for k, v in token_metadata(secret).items() if k != "upload-token"}
    r = create(server, len(DATA), no_token)
    assert (r.status_code, r.text) == (403, "Invalid upload token")
    assert app.hook_calls() == 2


def test_v2_handler_decides_on_tokens_without_server_secret(kind, servers, hook_app):
    """Same command line, uploads that carry an upload-token: under tusd the hook decides
    (valid -> 201 and the upload completes, expired -> its 400, forged -> its 403). tusgate
    without UPLOAD_SECRET must leave a token it cannot check to the pre-create hook, as tusd
    does, or a deployment that checks tokens in its hook stops accepting granite uploads."""
    secret = new_secret()
    app = hook_app("granite_hook_v2", secret)
    server = servers.start(kind, app.url, events="pre-create,post-finish")
    r = create(server, len(DATA), None, headers=granite_headers(secret))
    assert r.status_code == 201, r.text
    assert patch(r.headers["Location"], 0, DATA).status_code == 204
    r = create(server, len(DATA), expired(secret))
    assert (r.status_code, r.text) == (400, "Upload token expired")
    r = create(server, len(DATA), bad(secret))
    assert (r.status_code, r.text) == (403, "Invalid upload token")


def test_v2_handler_behind_tusgate_with_tokens(servers, hook_app, tmp_path):
    """tusgate with UPLOAD_SECRET and the adapted handler with the same secret: a valid upload
    passes both checks (so pre-create must still carry the upload-token), a forged one is
    refused by tusgate before the hook."""
    secret = new_secret()
    app = hook_app("granite_hook_v2", secret)
    assets = tmp_path / "assets"
    server = servers.start("tusgate", app.url, "--assets-dir", str(assets),
                           events="pre-create,post-finish", tokenless=False,
                           env={"UPLOAD_SECRET": secret})
    r = create(server, len(DATA), bad(secret))
    assert r.status_code == 403, r.text
    assert app.hook_calls() == 0
    r = create(server, len(DATA), None, headers=granite_headers(secret))
    assert r.status_code == 201, r.text
    assert patch(r.headers["Location"], 0, DATA).status_code == 204
    assert (assets / VISIBILITY / KEY).read_bytes() == DATA
    assert upload_id(r.headers["Location"])
