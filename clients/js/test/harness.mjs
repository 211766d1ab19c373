// Shared harness for the tus-js-client end-to-end suite.
//
// Starts the tus server under test (tusd or tusgate) as a child process with
// tusd-compatible flags, gives each test file its own server and upload dir,
// and provides the helpers every test uses: running a tus-js-client Upload,
// plain HTTP requests, and checking the stored bytes (HEAD offsets + GET sha256).
//
// Environment:
//   TUS_SERVER_BIN   path of the server binary (required; missing = failure)
//   TUS_SERVER_ARGS  extra flags, split on whitespace (optional)
//   TUS_KEEP_TMP=1   keep the temp dirs (uploads + server log) even on success
//   TUS_PROTOCOL     the protocol tus-js-client speaks: tus-v1 (default), ietf-draft-05
//                    (Upload-Draft-Interop-Version 6) or ietf-draft-03 (interop 5); the
//                    same cases run under each, except those a protocol lacks (skipped with
//                    the reason). The checks (assertStored, headOffset) stay tus 1.0 requests
//                    plus, under a draft, the draft's own offset retrieval.

import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import * as tus from 'tus-js-client'

export { tus }

export const KiB = 1024
export const MiB = 1024 * KiB

/** tus-js-client's `protocol` option → the Upload-Draft-Interop-Version it sends. */
const DRAFT_INTEROP_VERSIONS = { 'ietf-draft-03': '5', 'ietf-draft-05': '6' }

/** The protocol of this run (TUS_PROTOCOL); anything unknown fails every test file at load. */
export const PROTOCOL = process.env.TUS_PROTOCOL || 'tus-v1'
if (PROTOCOL !== 'tus-v1' && !(PROTOCOL in DRAFT_INTEROP_VERSIONS)) {
  throw new Error(
    `TUS_PROTOCOL=${PROTOCOL} is not one of tus-v1, ${Object.keys(DRAFT_INTEROP_VERSIONS).join(', ')}`,
  )
}

/** The interop version tus-js-client sends in this run, or undefined under tus 1.0. */
export const DRAFT_INTEROP = DRAFT_INTEROP_VERSIONS[PROTOCOL]

/** This run speaks the IETF draft (tus-js-client's ietf-draft-03 / ietf-draft-05). */
export function isDraft() {
  return DRAFT_INTEROP !== undefined
}

/**
 * The `skip` option of a case that only tus 1.0 has: the reason under a draft protocol, false
 * under tus 1.0 (node:test reports a skipped case with its reason, so it is never silent).
 */
export function tusOnly(reason) {
  return isDraft() && `tus 1.0 only under ${PROTOCOL}: ${reason}`
}

/** Short retry schedule so that failures surface quickly. */
export const FAST_RETRIES = [0, 200, 500]

/** Default per-test timeout (ms). */
export const TEST_TIMEOUT = 60_000

const READY_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 5_000
const LOG_TAIL_LINES = 40

// ---------------------------------------------------------------------------
// Server process management
// ---------------------------------------------------------------------------

/** Every live server of this process, so none survives an unexpected exit. */
const liveServers = new Set()

function killLiveServers() {
  for (const server of liveServers) server.child?.kill('SIGKILL')
}
process.on('exit', killLiveServers)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killLiveServers()
    process.kill(process.pid, signal) // the default action now that our handler is gone
  })
}

function serverBinary() {
  const bin = process.env.TUS_SERVER_BIN
  if (!bin) {
    throw new Error('TUS_SERVER_BIN is not set: point it at the tus server binary to test')
  }
  let stat = null
  try {
    fs.accessSync(bin, fs.constants.X_OK)
    stat = fs.statSync(bin)
  } catch {
    // reported below
  }
  // access(X_OK) alone is not enough: for root it passes on some non-executables.
  if (!stat?.isFile() || (stat.mode & 0o111) === 0) {
    throw new Error(`TUS_SERVER_BIN=${bin} is not an executable file`)
  }
  return bin
}

function extraArgs() {
  return (process.env.TUS_SERVER_ARGS ?? '').split(/\s+/).filter(Boolean)
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
async function freePort() {
  const srv = net.createServer()
  await new Promise((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', resolve)
  })
  const { port } = srv.address()
  await new Promise((resolve) => srv.close(resolve))
  return port
}

export class TusServer {
  /** `args` and `env` add to TUS_SERVER_ARGS and the environment (for one test file). */
  constructor({ args = [], env = {} } = {}) {
    this.bin = null
    this.args = [...extraArgs(), ...args]
    this.env = env
    this.tmpDir = null
    this.uploadDir = null
    this.logPath = null
    this.port = null
    this.child = null
    this.exited = null
    this.failed = false
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`
  }

  get endpoint() {
    return `${this.baseUrl}/files/`
  }

  /**
   * Spawns the server and waits until it answers. The first start checks the
   * binary and picks the port and temp dir; later starts reuse all three.
   */
  async start() {
    assert.equal(this.child, null, 'server is already running')
    if (this.port === null) {
      this.bin = serverBinary()
      this.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tusgate-js-'))
      this.uploadDir = path.join(this.tmpDir, 'uploads')
      this.logPath = path.join(this.tmpDir, 'server.log')
      fs.mkdirSync(this.uploadDir)
      this.port = await freePort()
    }
    const argv = [
      '-host', '127.0.0.1',
      '-port', String(this.port),
      '-upload-dir', this.uploadDir,
      '-base-path', '/files/',
      ...this.args,
    ]
    const log = fs.openSync(this.logPath, 'a')
    fs.writeSync(log, `\n### ${new Date().toISOString()} starting: ${this.bin} ${argv.join(' ')}\n`)
    const child = spawn(this.bin, argv, {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...this.env },
    })
    fs.closeSync(log)
    this.child = child
    liveServers.add(this)
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }))
      child.once('error', (err) => resolve({ code: null, signal: null, err }))
    })
    await this.waitReady()
  }

  /** Polls `OPTIONS <endpoint>` until it gets an HTTP response, bounded by READY_TIMEOUT_MS. */
  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS
    let lastError = null
    while (Date.now() < deadline) {
      // `exited` has already resolved if the process died; otherwise sleep(0) wins.
      const gone = await Promise.race([this.exited, sleep(0, null)])
      if (gone) {
        throw new Error(`server exited during startup (${describeExit(gone)})\n${this.logTail()}`)
      }
      try {
        const res = await request('OPTIONS', this.endpoint)
        if (res.status < 500) return
        lastError = new Error(`OPTIONS answered ${res.status}`)
      } catch (err) {
        lastError = err
      }
      await sleep(100)
    }
    throw new Error(
      `server not ready after ${READY_TIMEOUT_MS} ms (${lastError?.message})\n${this.logTail()}`,
    )
  }

  /** Sends `signal` to the server and waits for it to exit. */
  async kill(signal = 'SIGKILL') {
    const child = this.child
    if (!child) return
    child.kill(signal)
    // An unref'd timer, so that it does not keep the test process alive.
    const timeout = sleep(STOP_TIMEOUT_MS, null, { ref: false })
    const exited = await Promise.race([this.exited, timeout])
    if (!exited) {
      child.kill('SIGKILL')
      await this.exited
    }
    this.child = null
    liveServers.delete(this)
  }

  /** Starts the server again on the same port, upload dir and arguments. */
  async restart() {
    await this.kill('SIGKILL')
    await this.start()
  }

  /** Stops the server and removes the temp dir unless a test failed (or TUS_KEEP_TMP is set). */
  async stop() {
    await this.kill('SIGTERM')
    if (this.tmpDir === null) return
    if (this.failed || process.env.TUS_KEEP_TMP) {
      console.error(`# kept server temp dir: ${this.tmpDir}`)
    } else {
      fs.rmSync(this.tmpDir, { recursive: true, force: true })
    }
  }

  logTail(lines = LOG_TAIL_LINES) {
    if (this.logPath === null) return '(server never started)'
    let text
    try {
      text = fs.readFileSync(this.logPath, 'utf8')
    } catch {
      return '(no server log)'
    }
    const tail = text.trimEnd().split('\n').slice(-lines).join('\n')
    return `--- last ${lines} lines of ${this.logPath} ---\n${tail}\n--- end of server log ---`
  }
}

function withTimeout(promise, ms, message) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Appends the server log tail to a test failure. */
function withServerLog(err, server) {
  const error = err instanceof Error ? err : new Error(String(err))
  try {
    error.message = `${error.message}\n${server.logTail()}`
  } catch {
    // read-only message: leave the error as it is
  }
  return error
}

function describeExit({ code, signal, err }) {
  if (err) return err.message
  return signal ? `signal ${signal}` : `exit code ${code}`
}

/**
 * Declares a suite with its own server: started before the first test, always
 * stopped after the last. `body(server, test)` registers the cases with `test`,
 * which adds the default timeout and prints the server log tail on failure.
 */
export function describeWithServer(title, body, serverOptions = {}) {
  describe(title, () => {
    const server = new TusServer(serverOptions)
    // A start failure (e.g. TUS_SERVER_BIN unset) must fail every test rather
    // than leave them cancelled, so the hook keeps the error for the tests.
    let started
    before(() => {
      started = server.start().then(
        () => null,
        (err) => {
          server.failed = true // keep the temp dir and its server.log
          return err
        },
      )
    })
    after(() => server.stop())

    const test = (name, fn, { timeout = TEST_TIMEOUT, ...options } = {}) =>
      // node's own timeout is only a backstop: ours fires first so that the
      // failure carries the server log and the client uploads get aborted.
      it(name, { timeout: timeout + 5_000, ...options }, async (t) => {
        const startError = await started
        if (startError) throw startError
        try {
          await withTimeout(fn(t), timeout, `test "${name}" timed out after ${timeout} ms`)
        } catch (err) {
          server.failed = true
          throw withServerLog(err, server)
        } finally {
          await abortActiveUploads()
        }
      })

    body(server, test)
  })
}

// ---------------------------------------------------------------------------
// Plain HTTP (a fresh connection per request, so a killed server never
// leaves a stale keep-alive socket behind)
// ---------------------------------------------------------------------------

/**
 * Sends one request (`body`: a Buffer, or none). Resolves to { status, headers, body } where
 * body is a Buffer, or — with `{ hashBody: true }` — { sha256, length } computed while
 * streaming. Interim (1xx) responses are skipped, as Node does.
 */
export function request(
  method,
  url,
  { headers = {}, body = null, hashBody = false, timeoutMs = 30_000, tusResumable = true } = {},
) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent: false,
      headers: { ...(tusResumable ? { 'Tus-Resumable': '1.0.0' } : {}), ...headers },
      timeout: timeoutMs,
    })
    req.once('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)))
    req.once('error', reject)
    req.once('response', (res) => {
      const hash = createHash('sha256')
      const chunks = []
      let length = 0
      res.on('data', (chunk) => {
        length += chunk.length
        if (hashBody) hash.update(chunk)
        else chunks.push(chunk)
      })
      res.once('error', reject)
      res.once('end', () => {
        const body = hashBody ? { sha256: hash.digest('hex'), length } : Buffer.concat(chunks)
        resolve({ status: res.statusCode, headers: res.headers, body })
      })
    })
    req.end(body ?? undefined)
  })
}

export function head(url) {
  return request('HEAD', url)
}

/** The draft's offset retrieval: HEAD with this run's interop version, no Tus-Resumable. */
export function draftHead(url) {
  return request('HEAD', url, {
    tusResumable: false,
    headers: { 'Upload-Draft-Interop-Version': DRAFT_INTEROP },
  })
}

// ---------------------------------------------------------------------------
// Data and verification
// ---------------------------------------------------------------------------

export function randomData(size) {
  return randomBytes(size)
}

/** Human label for a chunkSize option: "default (whole file)" or "N MiB". */
export function chunkLabel(chunkSize) {
  return Number.isFinite(chunkSize) ? `${chunkSize / MiB} MiB` : 'default (whole file)'
}

export function sha256(buffer) {
  return createHash('sha256').update(buffer).digest('hex')
}

/** Splits a buffer into pieces of at most `size` bytes (e.g. a stream's chunks). */
export function splitBuffer(buffer, size) {
  const pieces = []
  for (let i = 0; i < buffer.length; i += size) pieces.push(buffer.subarray(i, i + size))
  return pieces
}

/** Writes `buffer` to a new file in `dir` and returns its path. */
export function writeTempFile(dir, buffer) {
  const file = path.join(dir, `input-${randomBytes(6).toString('hex')}.bin`)
  fs.writeFileSync(file, buffer)
  return file
}

/** The upload's current HEAD, asserted to be 200 with a numeric offset. */
export async function headOffset(url) {
  const res = await head(url)
  assert.equal(res.status, 200, `HEAD ${url} status`)
  const offset = Number(res.headers['upload-offset'])
  assert.ok(Number.isInteger(offset), `HEAD ${url} Upload-Offset: ${res.headers['upload-offset']}`)
  return offset
}

/**
 * Checks that the server holds exactly `source` at `url`:
 * HEAD says Upload-Offset == Upload-Length == source length, and the GET
 * body has the same sha256 as the source.
 */
export async function assertStored(url, source) {
  const res = await head(url)
  assert.equal(res.status, 200, `HEAD ${url} status`)
  assert.equal(res.headers['upload-length'], String(source.length), 'HEAD Upload-Length')
  assert.equal(res.headers['upload-offset'], String(source.length), 'HEAD Upload-Offset')

  const got = await request('GET', url, { hashBody: true })
  assert.ok([200, 204].includes(got.status), `GET ${url} status ${got.status}`)
  assert.equal(got.body.length, source.length, 'GET body length')
  assert.equal(got.body.sha256, sha256(source), 'GET body sha256')

  if (isDraft()) {
    // The draft's own view of the finished upload (§ Offset Retrieval, server behaviour).
    const res = await draftHead(url)
    assert.equal(res.status, 204, `draft HEAD ${url} status`)
    assert.equal(res.headers['upload-offset'], String(source.length), 'draft HEAD Upload-Offset')
    assert.equal(res.headers['upload-complete'], '?1', 'draft HEAD Upload-Complete')
    assert.equal(res.headers['upload-length'], String(source.length), 'draft HEAD Upload-Length')
    assert.equal(res.headers['cache-control'], 'no-store', 'draft HEAD Cache-Control')
    assert.equal(res.headers['tus-resumable'], undefined, 'draft HEAD answered as tus 1.0')
  }
}

/** Parses an Upload-Metadata header into { key: decoded value }. */
export function parseMetadata(header) {
  const result = {}
  for (const pair of (header ?? '').split(',')) {
    const [key, value = ''] = pair.trim().split(' ')
    if (key) result[key] = Buffer.from(value, 'base64').toString('utf8')
  }
  return result
}

// ---------------------------------------------------------------------------
// tus-js-client helpers
// ---------------------------------------------------------------------------

/**
 * Creates and starts a tus.Upload. Every request the client sends is recorded
 * in `requests` as { method, url, headers } (headers as set by the client).
 * Returns { upload, requests, done } where `done` resolves with the upload URL
 * on success and rejects on error. After `upload.abort()` it never settles.
 *
 * With `resumePrevious: true` the upload first looks up its fingerprint in
 * `options.urlStorage` (findPreviousUploads) and, if found, resumes the most
 * recent entry (resumeFromPreviousUpload) instead of creating a new upload.
 */
export function startUpload(input, options = {}, { resumePrevious = false } = {}) {
  const requests = []
  let upload
  const done = new Promise((resolve, reject) => {
    upload = new tus.Upload(input, {
      protocol: PROTOCOL,
      retryDelays: FAST_RETRIES,
      ...options,
      onBeforeRequest: async (req) => {
        requests.push({ method: req.getMethod(), url: req.getURL(), headers: recordHeaders(req) })
        await options.onBeforeRequest?.(req)
      },
      onAfterResponse: async (req, res) => {
        const sent = requests.findLast((r) => r.method === req.getMethod() && r.url === req.getURL())
        if (sent) sent.response = recordResponse(res)
        await options.onAfterResponse?.(req, res)
      },
      onSuccess: (payload) => {
        try {
          assertSpokeProtocol(requests, options.protocol ?? PROTOCOL)
        } catch (err) {
          reject(err)
          return
        }
        options.onSuccess?.(payload)
        resolve(upload.url)
      },
      onError: (err) => {
        options.onError?.(err)
        reject(err)
      },
    })
    activeUploads.add(upload)
    const ready = resumePrevious ? resumeLatest(upload) : Promise.resolve()
    ready.then(() => upload.start(), reject)
  })
  done.then(
    () => activeUploads.delete(upload),
    () => activeUploads.delete(upload),
  )
  return { upload, requests, done }
}

async function resumeLatest(upload) {
  const previous = await upload.findPreviousUploads()
  assert.ok(previous.length > 0, 'findPreviousUploads found no stored upload')
  upload.resumeFromPreviousUpload(previous.at(-1))
}

/** Uploads started by a test that have not settled; aborted when the test ends. */
const activeUploads = new Set()

async function abortActiveUploads() {
  const uploads = [...activeUploads]
  activeUploads.clear()
  await Promise.allSettled(uploads.map((upload) => upload.abort()))
}

/** Runs an upload to completion; resolves to { url, requests }. */
export async function uploadAll(input, options = {}, startOptions = {}) {
  const { requests, done } = startUpload(input, options, startOptions)
  const url = await done
  return { url, requests }
}

const RECORDED_HEADERS = [
  'Upload-Offset',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Metadata',
  'X-HTTP-Method-Override',
  'Tus-Resumable',
  'Upload-Draft-Interop-Version',
  'Upload-Complete',
  'Content-Type',
]

const RECORDED_RESPONSE_HEADERS = [
  'Tus-Resumable',
  'Upload-Draft-Interop-Version',
  'Upload-Complete',
  'Upload-Offset',
]

function recordResponse(res) {
  const headers = {}
  for (const name of RECORDED_RESPONSE_HEADERS) {
    const value = res.getHeader(name)
    if (value !== undefined && value !== null) headers[name] = value
  }
  return { status: res.getStatus(), headers }
}

/**
 * Every request of a finished upload spoke `protocol` and every response came from the same
 * protocol: under a draft, no request or response carries Tus-Resumable (a server that
 * ignored the draft header would answer as tus 1.0, with it) and every request carries the
 * interop version. This is what makes a draft run test the draft and not tus 1.0 again.
 */
export function assertSpokeProtocol(requests, protocol = PROTOCOL) {
  const interop = DRAFT_INTEROP_VERSIONS[protocol]
  for (const r of requests) {
    const what = `${r.method} ${r.url}`
    if (interop === undefined) {
      assert.equal(r.headers['Tus-Resumable'], '1.0.0', `${what}: Tus-Resumable`)
      assert.equal(r.headers['Upload-Draft-Interop-Version'], undefined, `${what}: interop version`)
      continue
    }
    assert.equal(r.headers['Upload-Draft-Interop-Version'], interop, `${what}: interop version`)
    assert.equal(r.headers['Tus-Resumable'], undefined, `${what}: Tus-Resumable sent`)
    if (r.response) {
      assert.equal(r.response.headers['Tus-Resumable'], undefined, `${what}: answered as tus 1.0`)
    }
  }
}

function recordHeaders(req) {
  const headers = {}
  for (const name of RECORDED_HEADERS) {
    const value = req.getHeader(name)
    if (value !== undefined) headers[name] = value
  }
  return headers
}

/** The data-carrying requests (PATCH, or POST with a method override). */
export function patchRequests(requests) {
  return requests.filter(
    (r) => r.method === 'PATCH' || r.headers['X-HTTP-Method-Override'] === 'PATCH',
  )
}

/** The server under test is tusgate (some cases exercise what only tusgate has). */
export function isTusgate() {
  return path.basename(process.env.TUS_SERVER_BIN ?? '').startsWith('tusgate')
}

/** Creation requests (POST without a method override). */
export function creationRequests(requests) {
  return requests.filter((r) => r.method === 'POST' && !r.headers['X-HTTP-Method-Override'])
}

/** How long a stalled PATCH waits before the mid-chunk trigger fires (ms). */
const STALL_MS = 300

/**
 * Upload options that run `action` once, when the upload reaches `offset`:
 *  - `'between-chunks'`: synchronously in onChunkComplete once the server has
 *    accepted `offset` bytes; no request is in flight, the next PATCH has not
 *    started.
 *  - `'mid-chunk'`: the PATCH that starts at `offset` sends the first half of
 *    its body (with the full Content-Length) and then stalls; `action` runs
 *    STALL_MS later, while that request is still open.
 * Returns { options, fired }; `fired` settles with the action's outcome.
 */
export function triggerAt(point, offset, action) {
  assert.ok(['between-chunks', 'mid-chunk'].includes(point), `unknown trigger point ${point}`)
  let fire
  const fired = new Promise((resolve, reject) => {
    let done = false
    fire = () => {
      if (done) return
      done = true
      try {
        resolve(action())
      } catch (err) {
        reject(err)
      }
    }
  })
  const options =
    point === 'between-chunks'
      ? { onChunkComplete: (_chunk, accepted) => accepted >= offset && fire() }
      : { httpStack: new StallingHttpStack(offset, () => setTimeout(fire, STALL_MS)) }
  return { options, fired }
}

/**
 * tus-js-client's Node httpStack, except that the first PATCH starting at
 * `offset` sends only half of its body and then never finishes it; `onStall`
 * is called once that half has been handed to the socket.
 */
class StallingHttpStack {
  constructor(offset, onStall) {
    this.inner = new tus.DefaultHttpStack()
    this.offset = String(offset)
    this.onStall = onStall
    this.stalled = false
  }

  createRequest(method, url) {
    const req = this.inner.createRequest(method, url)
    const send = req.send.bind(req)
    req.send = (body) => (this.isTarget(req, body) ? send(this.stall(body)) : send(body))
    return req
  }

  isTarget(req, body) {
    return (
      !this.stalled &&
      body instanceof Uint8Array &&
      req.getHeader('Upload-Offset') === this.offset &&
      (req.getMethod() === 'PATCH' || req.getHeader('X-HTTP-Method-Override') === 'PATCH')
    )
  }

  stall(body) {
    this.stalled = true
    const stream = new PassThrough()
    stream.size = body.length // tus-js-client sends this as Content-Length
    stream.write(body.subarray(0, Math.floor(body.length / 2)), () => this.onStall())
    return stream
  }

  getName() {
    return 'StallingHttpStack'
  }
}

/** Waits for a trigger; fails if the upload finishes (or fails) first. */
export function firedBeforeDone(fired, done) {
  const finished = done.then(
    () => {
      throw new Error('upload finished before the trigger fired')
    },
    (err) => {
      throw new Error(`upload failed before the trigger fired: ${err.message}`)
    },
  )
  return Promise.race([fired, finished])
}

/** In-memory urlStorage for findPreviousUploads / resumeFromPreviousUpload. */
export class MemoryUrlStorage {
  constructor() {
    this.entries = new Map()
    this.nextKey = 0
  }

  async findAllUploads() {
    return [...this.entries.entries()].map(([urlStorageKey, e]) => ({ ...e, urlStorageKey }))
  }

  async findUploadsByFingerprint(fingerprint) {
    return (await this.findAllUploads()).filter((e) => e.fingerprint === fingerprint)
  }

  async removeUpload(urlStorageKey) {
    this.entries.delete(urlStorageKey)
  }

  async addUpload(fingerprint, upload) {
    const key = `tus::${fingerprint}::${this.nextKey++}`
    this.entries.set(key, { ...upload, fingerprint })
    return key
  }
}
