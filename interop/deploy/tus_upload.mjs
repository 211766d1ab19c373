// One upload with the real tus-js-client, as a granite-assets front end does it: the headers of
// granite's UploadUrlResult (here: the tokened Upload-Metadata printed by `tusgate sign upload`)
// are passed unchanged as tus-js-client `headers`.
//
//   node tus_upload.mjs ENDPOINT FILE HEADERS_JSON [OPTIONS_JSON]
//
// OPTIONS_JSON: plain-data tus.Upload options (chunkSize, ...). For https endpoints with a
// self-signed certificate, trust it with NODE_EXTRA_CA_CERTS=cert.pem (verification stays on).
// Prints one JSON line and exits 0 on success: {"url": "<upload URL = Location of the POST>"};
// on failure {"error": "...", "status": <HTTP status or null>} and exit 1.
//
// tus-js-client comes from clients/js/node_modules (`npm ci` there), or TUS_JS_CLIENT_DIR.

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

const [endpoint, file, headersJson, optionsJson = '{}'] = process.argv.slice(2)
if (!endpoint || !file || !headersJson) {
  console.error('usage: node tus_upload.mjs ENDPOINT FILE HEADERS_JSON [OPTIONS_JSON]')
  process.exit(2)
}
setTimeout(() => finish({ error: `no result after ${RUN_TIMEOUT_MS} ms`, status: null }, 1),
  RUN_TIMEOUT_MS).unref()

const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  headers: JSON.parse(headersJson),
  metadata: {}, // the tokened Upload-Metadata travels in `headers`, as in granite's docs
  uploadSize: fs.statSync(file).size,
  retryDelays: null, // a failure must surface, not be retried
  ...JSON.parse(optionsJson),
  onSuccess: () => finish({ url: upload.url }, 0),
  onError: (err) => {
    const status = err.originalResponse ? err.originalResponse.getStatus() : null
    finish({ error: String(err.message ?? err), status }, 1)
  },
})
upload.start()
