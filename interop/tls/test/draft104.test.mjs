// The draft's 104 (Upload Resumption Supported) over TLS: with -draft-104, curl's HTTP/1.1
// draft creation gets the 104, written above TLS between hyper's messages (src/interim.rs),
// and then its 201; over HTTP/2 (ALPN) there is no 104 (hyper does not expose h2's
// informational responses) and the creation works as before.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { KiB, curl, makeCert, randomData, startTusgate, tempDir } from './harness.mjs'

/** A draft creation with all of `data`; returns curl's dump of every response head. */
async function create(server, cert, flag, data) {
  const r = await curl([
    flag, '--cacert', cert, '-sS', '-X', 'POST',
    '-H', 'Upload-Draft-Interop-Version: 9', '-H', 'Upload-Complete: ?1',
    '-H', 'Content-Type: application/octet-stream',
    '--data-binary', '@-', '-D', '-', '-o', '/dev/null', server.url,
  ], { input: data })
  assert.equal(r.code, 0, r.stderr.toString())
  return r.stdout.toString()
}

describe('the draft\'s 104 over TLS', () => {
  let dir, pair, server
  before(async () => {
    dir = tempDir()
    pair = makeCert(dir, 'localhost')
    server = await startTusgate([
      `-tls-certificate=${pair.cert}`, `-tls-key=${pair.key}`, '-draft-104',
    ])
  })
  after(async () => server?.stop())

  test('HTTP/1.1: the 104 names the upload, then the 201', async () => {
    const heads = await create(server, pair.cert, '--http1.1', randomData(64 * KiB, 7))
    const [interim, final] = heads.split('\r\n\r\n')
    assert.match(interim, /^HTTP\/1\.1 104 Upload Resumption Supported\r\n/)
    assert.match(interim, /\r\nUpload-Draft-Interop-Version: 9(\r\n|$)/)
    assert.match(interim, /\r\nUpload-Limit: /)
    const location = interim.match(/\r\nLocation: (\S+)/)?.[1]
    assert.ok(location?.startsWith(server.url), `Location ${location}`)
    assert.match(final, /^HTTP\/1\.1 201 /)
  })

  test('HTTP/2: no 104, and the creation still succeeds', async () => {
    const heads = await create(server, pair.cert, '--http2', randomData(64 * KiB, 8))
    assert.doesNotMatch(heads, / 104 /)
    assert.match(heads, /^HTTP\/2 201/)
  })
})
