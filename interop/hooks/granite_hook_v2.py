"""The granite-assets docs' hook handler, adapted to tusd v2's hook format (copy this one).

tusd v2 (and tusgate, which sends the same requests) puts the hook name in the body's `Type`
and the upload in `Event.Upload`; there is no `Hook-Name` header and no top-level `Upload`. A
v2 hook refuses an upload by answering **200** with `RejectUpload` and the response the client
should get (`HTTPResponse`): any non-2xx answer is a failed hook, which tusd turns into a 500
for the client (after retrying a 5xx), not into the 400/403 the handler meant.

Behind tusgate with UPLOAD_SECRET set the token is already checked before pre-create (a bad
one never reaches this hook), and the file is already published at
`{storage_path}/{visibility}/{key}` when post-finish arrives; this handler stays correct there
too, so the same code runs behind tusd v2 and tusgate.

Run: UPLOAD_SECRET=... uvicorn granite_hook_v2:app --port 8000, then start the server with
`-hooks-http http://127.0.0.1:8000/tusd/hooks`.
"""

import hmac
import os
import time

from fastapi import FastAPI, Request

app = FastAPI()
UPLOAD_SECRET = os.environ["UPLOAD_SECRET"]


def reject(status: int, message: str) -> dict:
    """A v2 rejection: 200 to the server, `status` + `message` to the uploading client."""
    return {"RejectUpload": True,
            "HTTPResponse": {"StatusCode": status, "Body": message,
                             "Header": {"Content-Type": "text/plain; charset=utf-8"}}}


def check_token(meta: dict) -> dict | None:
    """The docs' pre-create check, unchanged in substance; None when the token is good."""
    key = meta.get("asset-key", "")
    visibility = meta.get("visibility", "private")
    content_type = meta.get("content-type", "")
    token = meta.get("upload-token", "")
    try:
        expires = int(meta.get("upload-expires", "0"))
    except ValueError:
        return reject(400, "upload-expires must be a Unix time")
    if time.time() > expires:
        return reject(400, "Upload token expired")
    payload = f"{expires}:{key}:{visibility}:{content_type}"
    expected = hmac.new(UPLOAD_SECRET.encode(), payload.encode(), "sha256").hexdigest()
    if not hmac.compare_digest(token, expected):
        return reject(403, "Invalid upload token")
    return None


@app.post("/tusd/hooks")
async def tusd_hook(request: Request) -> dict:
    body = await request.json()
    hook_name = body.get("Type", "")                        # v1: the Hook-Name header
    upload = (body.get("Event") or {}).get("Upload") or {}  # v1: body["Upload"]
    meta = upload.get("MetaData") or {}

    if hook_name == "pre-create":
        refusal = check_token(meta)
        if refusal is not None:
            return refusal

    if hook_name == "post-finish":
        # tusd: move the completed file (upload["Storage"]["Path"]) to
        # {storage_path}/{visibility}/{key}; tusgate has already published it there.
        # Then update your database record.
        ...

    return {}
