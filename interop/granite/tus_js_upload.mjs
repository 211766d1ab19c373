// Uploads one file with the real tus-js-client, the way a granite-assets front end does:
// granite's `UploadUrlResult.headers` are passed unchanged as tus-js-client `headers`.
//
//   node tus_js_upload.mjs ENDPOINT FILE HEADERS_JSON [OPTIONS_JSON]
//
// OPTIONS_JSON may hold any tus.Upload option that is plain data (chunkSize, parallelUploads,
// retryDelays, ...) plus `stopBeforeFinal: true`, which makes a parallel upload stop right before
// its final concatenation POST (so a test can check that the partial uploads alone publish
// nothing).
//
// Prints exactly one JSON line on stdout and exits 0:
//   {"url": "<upload URL>", "interop": [...], "tusResumableAnswers": n}  upload finished;
//       `interop`: the distinct Upload-Draft-Interop-Version values the client sent (empty under
//       tus 1.0), `tusResumableAnswers`: responses that carried Tus-Resumable (a draft upload
//       answered as tus 1.0 would show here)
//   {"stoppedBeforeFinal": true, "partials": [...]}  stopBeforeFinal hit
//   {"error": "<message>", "status": <HTTP status or null>}  upload failed (exit 1)
//
// tus-js-client is loaded from clients/js/node_modules (installed there by `npm ci`), or from
// the directory in TUS_JS_CLIENT_DIR.

import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const clientDir = process.env.TUS_JS_CLIENT_DIR ?? path.join(here, '..', '..', 'clients', 'js')
const tus = createRequire(path.join(clientDir, 'package.json'))('tus-js-client')

/** Whole-run limit, so a hung server can never hang the caller. */
const RUN_TIMEOUT_MS = Number(process.env.TUS_JS_TIMEOUT_MS ?? 60_000)

const STOPPED = 'stopped before the final concatenation request'

function finish(result, code) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(code)
}

/** tus-js-client's Node httpStack, except that it can refuse to send the final concat POST. */
class StopBeforeFinalStack {
  constructor() {
    this.inner = new tus.DefaultHttpStack()
  }

  createRequest(method, url) {
    const req = this.inner.createRequest(method, url)
    const send = req.send.bind(req)
    req.send = (body) => {
      const concat = req.getHeader('Upload-Concat') ?? ''
      if (method === 'POST' && concat.startsWith('final;')) {
        finish({ stoppedBeforeFinal: true, partials: concat.slice('final;'.length).split(' ') }, 0)
      }
      return send(body)
    }
    return req
  }

  getName() {
    return 'StopBeforeFinalStack'
  }
}

function main() {
  const [endpoint, file, headersJson, optionsJson = '{}'] = process.argv.slice(2)
  if (!endpoint || !file || !headersJson) {
    console.error('usage: node tus_js_upload.mjs ENDPOINT FILE HEADERS_JSON [OPTIONS_JSON]')
    process.exit(2)
  }
  const { stopBeforeFinal = false, ...options } = JSON.parse(optionsJson)
  fs.accessSync(file, fs.constants.R_OK)

  setTimeout(() => finish({ error: `no result after ${RUN_TIMEOUT_MS} ms`, status: null }, 1),
    RUN_TIMEOUT_MS).unref()

  const interop = new Set()
  let tusResumableAnswers = 0
  const upload = new tus.Upload(fs.createReadStream(file), {
    endpoint,
    headers: JSON.parse(headersJson),
    metadata: {}, // granite's Upload-Metadata travels in `headers`, as in granite's docs
    retryDelays: null, // a rejection must surface, not be retried
    ...options,
    ...(stopBeforeFinal ? { httpStack: new StopBeforeFinalStack() } : {}),
    onBeforeRequest: (req) => {
      const version = req.getHeader('Upload-Draft-Interop-Version')
      if (version !== undefined) interop.add(version)
    },
    onAfterResponse: (_req, res) => {
      if (res.getHeader('Tus-Resumable')) tusResumableAnswers += 1
    },
    onSuccess: () =>
      finish({ url: upload.url, interop: [...interop].sort(), tusResumableAnswers }, 0),
    onError: (err) => {
      const status = err.originalResponse ? err.originalResponse.getStatus() : null
      finish({ error: String(err.message ?? err), status }, 1)
    },
  })
  upload.start()
}

main()
