"""The granite-assets docs' hook handler, as written (infrastructure-setup, "Hook integration").

Only the lines the docs' snippet leaves out are added (marked `# added:`): its imports of `os`
and FastAPI, and the `app` it decorates. Everything between the markers is the docs' code,
unchanged. It speaks tusd **v1**'s hook format: the hook name in a `Hook-Name` header and the
upload in `body["Upload"]`. tusd v2 sends neither (`Type` and `Event.Upload` in the body, no
such header), so behind tusd v2 `hook_name` is always "" and this handler accepts every upload
without looking at its token. test_granite_handler.py runs it for real under uvicorn.
"""

import os  # added: the snippet uses os.environ without importing os

from fastapi import FastAPI  # added

app = FastAPI()  # added: the snippet decorates an `app` it does not define

# --- the docs' code, unchanged ---------------------------------------------------------------
import hmac
import base64
from fastapi import Request, HTTPException

UPLOAD_SECRET = os.environ["UPLOAD_SECRET"]

@app.post("/tusd/hooks")
async def tusd_hook(request: Request) -> dict:
    body = await request.json()
    hook_name = request.headers.get("Hook-Name", "")
    upload = body.get("Upload", {})
    meta = upload.get("MetaData", {})

    if hook_name == "pre-create":
        key = meta.get("asset-key", "")
        visibility = meta.get("visibility", "private")
        content_type = meta.get("content-type", "")
        expires = int(meta.get("upload-expires", "0"))
        token = meta.get("upload-token", "")

        import time
        if time.time() > expires:
            raise HTTPException(status_code=400, detail="Upload token expired")

        payload = f"{expires}:{key}:{visibility}:{content_type}"
        expected = hmac.new(
            UPLOAD_SECRET.encode(), payload.encode(), "sha256"
        ).hexdigest()
        if not hmac.compare_digest(token, expected):
            raise HTTPException(status_code=403, detail="Invalid upload token")

    if hook_name == "post-finish":
        # Move the completed file to {storage_path}/{visibility}/{key}
        # and update your database record.
        ...

    return {}
# --- end of the docs' code -------------------------------------------------------------------
