"""Tokens and hooks compose in tusgate (tusd has no tokens, so these run against tusgate only):
the token is checked first and a bad one never reaches pre-create; a good one goes on to the
hook, which can still refuse; post-finish fires after the publish and says where the asset is.
"""

from __future__ import annotations

import json

from conftest import PROGRESS_INTERVAL_S, create, new_secret, patch, stored_files
from recorder import HookRecorder, Reply, reject_pre_create_when
from test_granite_handler import (CONTENT_TYPE, DATA, KEY, VISIBILITY, bad, expired,
                                  granite_headers, token_metadata)


def start(servers, rec, tmp_path, secret):
    assets = tmp_path / "assets"
    server = servers.start("tusgate", rec.url, "--assets-dir", str(assets), tokenless=False,
                           env={"UPLOAD_SECRET": secret})
    return server, assets


def test_bad_tokens_never_reach_the_hook(servers, tmp_path):
    secret = new_secret()
    with HookRecorder() as rec:
        server, assets = start(servers, rec, tmp_path, secret)
        for metadata, status in ((bad(secret), 403), (expired(secret), 400),
                                 ({"filename": "x"}, 403)):
            r = create(server, len(DATA), metadata)
            assert r.status_code == status, (metadata, r.status_code, r.text)
        rec.settle(PROGRESS_INTERVAL_S + 0.2)
        assert rec.snapshot() == [], [h.type for h in rec.snapshot()]
        assert stored_files(server.upload_dir) == []


def test_a_good_token_can_still_be_refused_by_pre_create(servers, tmp_path):
    secret = new_secret()
    with HookRecorder() as rec:
        rec.policy = reject_pre_create_when("asset-key", "blocked/key.txt", status=451,
                                            body="blocked by the app")
        server, assets = start(servers, rec, tmp_path, secret)
        r = create(server, len(DATA), token_metadata(secret, key="blocked/key.txt"))
        assert (r.status_code, r.text) == (451, "blocked by the app")
        hooks = rec.snapshot()
        assert [h.type for h in hooks] == ["pre-create"]
        assert hooks[0].metadata["asset-key"] == "blocked/key.txt"
        assert stored_files(server.upload_dir) == []
        assert not (assets / VISIBILITY / "blocked").exists()


def test_post_finish_fires_after_the_publish_and_names_the_asset(servers, tmp_path):
    secret = new_secret()
    seen_at_post_finish: dict = {}
    with HookRecorder() as rec:
        published = tmp_path / "assets" / VISIBILITY / KEY

        def policy(hook):
            if hook.type == "post-finish":   # what the app would find on disk right now
                seen_at_post_finish["bytes"] = published.read_bytes() \
                    if published.exists() else None
            return Reply()
        rec.policy = policy
        server, assets = start(servers, rec, tmp_path, secret)
        r = create(server, len(DATA), None, headers=granite_headers(secret))
        assert r.status_code == 201, r.text
        assert patch(r.headers["Location"], 0, DATA).status_code == 204
        finish = rec.wait_count("post-finish", 1)[0]
        assert seen_at_post_finish["bytes"] == DATA, "post-finish arrived before the publish"
        storage = finish.upload.get("Storage") or {}
        assert any(str(published) in str(v) for v in storage.values()), \
            f"post-finish Storage does not name {published}: {json.dumps(storage)}"
        assert finish.metadata.get("asset-key") == KEY
        assert finish.metadata.get("content-type") == CONTENT_TYPE
        assert "upload-token" not in finish.metadata


def test_storage_paths_of_a_tokened_upload_exist_when_the_hook_arrives(servers, tmp_path):
    """As for a tokenless upload (test_scenarios): whatever Storage.Path / InfoPath name exists
    when the hook arrives. After the publish the bytes are at the asset's path; a Path that
    still names the moved upload file sends a tusd-style post-finish hook to a missing file."""
    from test_scenarios import storage_paths_policy
    secret = new_secret()
    seen: list = []
    with HookRecorder() as rec:
        rec.policy = storage_paths_policy(seen)
        server, _ = start(servers, rec, tmp_path, secret)
        r = create(server, len(DATA), None, headers=granite_headers(secret))
        assert r.status_code == 201, r.text
        assert patch(r.headers["Location"], 0, DATA).status_code == 204
        rec.wait_count("post-finish", 1)
    missing = [(t, path) for t, paths in seen for path, exists in paths.values() if not exists]
    assert not missing, f"Storage names files that do not exist: {missing}"


def test_post_finish_of_an_upload_recovered_after_a_crash(servers, tmp_path):
    """tusgate dies between the last byte and the publish (TUSGATE_CRASH_AT, tusgate's fault
    injection); restarted on the same directories it finishes the publish at startup and only
    then sends post-finish, once, with an empty HTTPRequest (no request finished it). The
    post-finish is not lost (tusd has no such recovery: its post-finish would be)."""
    import time

    import requests
    secret = new_secret()
    assets = tmp_path / "assets"
    published = assets / VISIBILITY / KEY
    seen_at_post_finish: list = []
    with HookRecorder() as rec:
        def policy(hook):
            if hook.type == "post-finish":
                seen_at_post_finish.append(published.read_bytes() if published.exists() else None)
            return Reply()
        rec.policy = policy
        first = servers.start("tusgate", rec.url, "--assets-dir", str(assets), tokenless=False,
                              env={"UPLOAD_SECRET": secret,
                                   "TUSGATE_CRASH_AT": "publish:phase-recorded"})
        r = create(first, len(DATA), None, headers=granite_headers(secret))
        assert r.status_code == 201, r.text
        uid = r.headers["Location"].rsplit("/", 1)[-1]
        try:
            patch(r.headers["Location"], 0, DATA)
        except requests.RequestException:
            pass  # the process aborted mid-request
        deadline = time.monotonic() + 10
        while first.process.alive():
            assert time.monotonic() < deadline, "TUSGATE_CRASH_AT did not crash tusgate"
            time.sleep(0.05)
        assert not published.exists()
        assert not rec.of("post-finish")
        servers.start("tusgate", rec.url, "--assets-dir", str(assets), tokenless=False,
                      env={"UPLOAD_SECRET": secret}, upload_dir=first.upload_dir)
        finish = rec.wait_count("post-finish", 1, uid)
        rec.settle(PROGRESS_INTERVAL_S + 0.5)
        assert len(rec.of("post-finish", uid)) == 1
        assert seen_at_post_finish == [DATA]
        assert finish[0].request.get("Method", "") == ""
        assert published.read_bytes() == DATA
