// Starts one upload with the real tus-js-client and aborts it mid-request, as a user closing
// the page (or an app going to the background) does: `upload.abort()` once at least
// ABORT_AFTER bytes of the running PATCH were handed to the socket, which cuts that request off.
// The caller then resumes the printed URL with tus_js_upload.mjs (`uploadUrl`).
//
//   node tus_js_abort.mjs ENDPOINT FILE HEADERS_JSON OPTIONS_JSON ABORT_AFTER
//
// OPTIONS_JSON: any plain-data tus.Upload option (protocol, chunkSize, ...). Prints exactly one
// JSON line on stdout:
//   {"aborted": true, "url": "<upload URL>", "sent": <bytes reported sent>}   exit 0
//   {"url": "<upload URL>"}                    finished before ABORT_AFTER (exit 1)
//   {"error": "<message>", "status": <HTTP status or null>}               exit 1
//
// tus-js-client is loaded as interop/granite/tus_js_upload.mjs loads it: from
// clients/js/node_modules, or from the directory in TUS_JS_CLIENT_DIR.

import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const clientDir = process.env.TUS_JS_CLIENT_DIR ?? path.join(here, '..', '..', 'clients', 'js')
const tus = createRequire(path.join(clientDir, 'package.json'))('tus-js-client')

const RUN_TIMEOUT_MS = Number(process.env.TUS_JS_TIMEOUT_MS ?? 60_000)

function finish(result, code) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(code)
}

function main() {
  const [endpoint, file, headersJson, optionsJson, abortAfterText] = process.argv.slice(2)
  const abortAfter = Number(abortAfterText)
  if (!endpoint || !file || !headersJson || !optionsJson || !(abortAfter > 0)) {
    console.error('usage: node tus_js_abort.mjs ENDPOINT FILE HEADERS_JSON OPTIONS_JSON ABORT_AFTER')
    process.exit(2)
  }
  fs.accessSync(file, fs.constants.R_OK)
  setTimeout(() => finish({ error: `no result after ${RUN_TIMEOUT_MS} ms`, status: null }, 1),
    RUN_TIMEOUT_MS).unref()

  let aborted = false
  const upload = new tus.Upload(fs.createReadStream(file), {
    endpoint,
    headers: JSON.parse(headersJson),
    metadata: {},
    retryDelays: null,
    ...JSON.parse(optionsJson),
    onProgress: (sent) => {
      if (aborted || sent < abortAfter || !upload.url) return
      aborted = true
      // abort() without terminating: the upload stays on the server, resumable.
      upload.abort(false).then(() => finish({ aborted: true, url: upload.url, sent }, 0),
        (err) => finish({ error: `abort failed: ${err}`, status: null }, 1))
    },
    onSuccess: () => finish({ url: upload.url }, 1),
    onError: (err) => {
      const status = err.originalResponse ? err.originalResponse.getStatus() : null
      finish({ error: String(err.message ?? err), status }, 1)
    },
  })
  upload.start()
}

main()
