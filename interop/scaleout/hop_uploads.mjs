// Runs many uploads at once with the real tus-js-client, each request of each upload sent to a
// random tusgate instance: a custom httpStack wraps tus-js-client's Node stack and replaces the
// host:port of every request's URL (POST, HEAD, each PATCH, the final concatenation POST) with
// one drawn at random from the instances. No sticky sessions, as behind a plain load balancer.
//
//   node hop_uploads.mjs JOB_JSON_FILE
//
// JOB: {
//   "instances": ["127.0.0.1:PORT", ...],
//   "endpointPath": "/files/",
//   "idleTimeoutMs": 4000,        // a request whose socket sees no traffic this long is aborted
//                                 // (a frozen server); 0 = never (then tus-js-client waits)
//   "runTimeoutMs": 120000,       // whole run; unfinished uploads are reported as errors
//   "retryInterrupted": false,    // also retry a 400 ERR_UPLOAD_INTERRUPTED (see retryable)
//   "seed": 1,
//   "uploads": [{"name": "...", "file": "/path", "headers": {...}, "startAtMs": 0,
//                "options": {"chunkSize": 1048576, "parallelUploads": 3, "retryDelays": [...]}}]
// }
//
// Prints JSON lines on stdout as things happen (t = ms since the run started):
//   {"event": "start"}
//   {"event": "created", "upload": NAME, "id": ID, "instance": "host:port", "t": ...}
//        (every 201 to a POST: the upload itself, each partial, the final)
//   {"event": "retry", "upload": NAME, "status": S|null, "interrupted": bool, "error": "...",
//    "t": ...}
//   {"event": "done", "upload": NAME, "url": URL, "id": ID, "t": ..., "requests": {"host:port": n},
//    "retries": n}
//   {"event": "error", "upload": NAME, "error": "...", "status": S|null, "t": ..., "requests": ...}
//   {"event": "end", "done": n, "failed": n}
// and exits 0 (every upload done) or 1.
//
// tus-js-client is loaded from clients/js/node_modules (`npm ci` there), or TUS_JS_CLIENT_DIR.

import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const clientDir = process.env.TUS_JS_CLIENT_DIR ?? path.join(here, '..', '..', 'clients', 'js')
const tus = createRequire(path.join(clientDir, 'package.json'))('tus-js-client')

const started = Date.now()
const now = () => Date.now() - started
const emit = (obj) => process.stdout.write(`${JSON.stringify({ ...obj, t: now() })}\n`)

/** A small seeded PRNG (mulberry32), so a run's choice of instances can be repeated. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** tus-js-client's Node stack, each request re-addressed to a random instance. */
class HopStack {
  constructor(name, instances, random, idleTimeoutMs, stats) {
    this.inner = new tus.DefaultHttpStack()
    this.name = name
    this.instances = instances
    this.random = random
    this.idleTimeoutMs = idleTimeoutMs
    this.stats = stats
  }

  createRequest(method, url) {
    const target = this.instances[Math.floor(this.random() * this.instances.length)]
    const rewritten = new URL(url)
    rewritten.host = target
    const req = this.inner.createRequest(method, rewritten.toString())
    const send = req.send.bind(req)
    req.send = async (body) => {
      this.stats[target] = (this.stats[target] ?? 0) + 1
      const pending = send(body) // the Node request exists once send() returned
      const nodeReq = req.getUnderlyingObject()
      if (nodeReq && this.idleTimeoutMs > 0) {
        nodeReq.setTimeout(this.idleTimeoutMs, () =>
          nodeReq.destroy(new Error(`${method} to ${target}: no traffic for ${this.idleTimeoutMs} ms`)))
      }
      const res = await pending
      if (method === 'POST' && res.getStatus() === 201) {
        const location = res.getHeader('Location') ?? ''
        emit({ event: 'created', upload: this.name, id: location.replace(/\/+$/, '').split('/').pop(),
          instance: target, concat: req.getHeader('Upload-Concat') ?? null })
      }
      return res
    }
    return req
  }

  getName() {
    return 'HopStack'
  }
}

/** Whether the request was answered `400 ERR_UPLOAD_INTERRUPTED`: another request for the
 * same upload took it over. */
function interrupted(err) {
  const status = err.originalResponse ? err.originalResponse.getStatus() : 0
  return status === 400 && /ERR_UPLOAD_INTERRUPTED/.test(err.originalResponse.getBody() ?? '')
}

function retryable(err, job) {
  // With `retryInterrupted`, also a request another one interrupted: when a client gave up on
  // a request (its idle timeout) that a server still holds, that stale request can take the
  // upload over from the client's retry, and tus-js-client's default gives up on a 400.
  if (job.retryInterrupted && interrupted(err)) return true
  // tus-js-client's default rule: anything but a 4xx, except 409 and 423.
  const status = err.originalResponse ? err.originalResponse.getStatus() : 0
  return !(status >= 400 && status < 500) || status === 409 || status === 423
}

function runOne(job, spec, random) {
  return new Promise((resolve) => {
    const stats = {}
    let retries = 0
    const upload = new tus.Upload(fs.createReadStream(spec.file), {
      endpoint: `http://${job.instances[0]}${job.endpointPath ?? '/files/'}`,
      headers: spec.headers ?? {},
      metadata: {},
      retryDelays: null,
      ...spec.options,
      httpStack: new HopStack(spec.name, job.instances, random, job.idleTimeoutMs ?? 0, stats),
      onShouldRetry: (err) => {
        const status = err.originalResponse ? err.originalResponse.getStatus() : null
        const again = retryable(err, job)
        if (again) {
          retries += 1
          emit({ event: 'retry', upload: spec.name, status, interrupted: interrupted(err),
            error: String(err.message ?? err).slice(0, 300) })
        }
        return again
      },
      onSuccess: () => {
        emit({ event: 'done', upload: spec.name, url: upload.url,
          id: upload.url.replace(/\/+$/, '').split('/').pop(), requests: stats, retries })
        resolve(true)
      },
      onError: (err) => {
        const status = err.originalResponse ? err.originalResponse.getStatus() : null
        emit({ event: 'error', upload: spec.name, error: String(err.message ?? err).slice(0, 500),
          status, requests: stats, retries })
        resolve(false)
      },
    })
    spec.abort = () => upload.abort()
    upload.start()
  })
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const random = prng(job.seed ?? 1)
  emit({ event: 'start' })
  const results = []
  let finished = false
  const timer = setTimeout(() => {
    if (finished) return
    for (const spec of job.uploads) {
      if (spec.result === undefined) {
        emit({ event: 'error', upload: spec.name, error: `no result after ${job.runTimeoutMs} ms`, status: null })
        spec.abort?.()
      }
    }
    const done = job.uploads.filter((s) => s.result === true).length
    emit({ event: 'end', done, failed: job.uploads.length - done })
    process.exit(1)
  }, job.runTimeoutMs ?? 120_000)
  for (const spec of job.uploads) {
    results.push(new Promise((resolve) => setTimeout(resolve, spec.startAtMs ?? 0))
      .then(() => runOne(job, spec, random))
      .then((ok) => { spec.result = ok; return ok }))
  }
  const outcomes = await Promise.all(results)
  finished = true
  clearTimeout(timer)
  const done = outcomes.filter(Boolean).length
  emit({ event: 'end', done, failed: outcomes.length - done })
  process.exit(done === outcomes.length ? 0 : 1)
}

main()
