// SIGHUP reloads the certificate and key while uploads run: two slow uploads (one over
// HTTP/1.1, one over HTTP/2) are in flight on connections made with the old certificate when
// the files are replaced and tusgate is signalled. Both must complete intact on their
// connections, a new connection must be shown the new certificate, and a reload whose key does
// not match must log an error and keep the pair that works.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { KiB, MiB, curl, makeCert, parseHead, presentedCN, randomData, sha256, sleep, startTusgate, tempDir } from './harness.mjs'

const TUS = ['-H', 'Tus-Resumable: 1.0.0']

/** Replaces `to` with a copy of `from` atomically (write aside, rename), as renewers do. */
function replace(from, to) {
  fs.copyFileSync(from, `${to}.new`)
  fs.renameSync(`${to}.new`, to)
}

async function waitFor(what, check, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe('SIGHUP reloads the certificate without dropping connections', () => {
  let dir, oldPair, newPair, cert, key, server
  before(async () => {
    dir = tempDir()
    oldPair = makeCert(dir, 'old')
    newPair = makeCert(dir, 'new')
    cert = path.join(dir, 'served.crt')
    key = path.join(dir, 'served.key')
    fs.copyFileSync(oldPair.cert, cert)
    fs.copyFileSync(oldPair.key, key)
    server = await startTusgate([`-tls-certificate=${cert}`, `-tls-key=${key}`, '-network-timeout=20s'])
  })
  after(async () => server?.stop())

  test('uploads in flight complete, new connections see the new certificate', async () => {
    assert.equal(presentedCN(server.port), 'old')
    const size = 2 * MiB + 3
    const uploads = []
    for (const [flag, seed] of [['--http1.1', 1], ['--http2', 2]]) {
      const created = await curl([flag, '--cacert', oldPair.cert, ...TUS, '-D', '-', '-o', '/dev/null', '-X', 'POST', '-H', `Upload-Length: ${size}`, server.url])
      const location = parseHead(created.stdout).headers.location
      assert.ok(location, created.stderr)
      const data = randomData(size, seed)
      // About 5 s at 400 KiB/s: long enough to swap the certificate in the middle.
      const patch = curl(
        [
          flag, '--cacert', oldPair.cert, ...TUS, '--limit-rate', `${400 * KiB}`,
          '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '-X', 'PATCH', '-H', 'Upload-Offset: 0',
          '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', '@-', location,
        ],
        { input: data },
      )
      const upload = { flag, location, data, patch, settled: false }
      patch.then(() => (upload.settled = true))
      uploads.push(upload)
    }
    await sleep(1500)

    // Still sending on their connections made with the old certificate.
    assert.deepEqual(uploads.map((u) => u.settled), [false, false])
    replace(newPair.cert, cert)
    replace(newPair.key, key)
    server.child.kill('SIGHUP')
    await waitFor('the reload to be logged', () => server.stderr.includes('SIGHUP: reloaded the TLS certificate and key'))
    assert.equal(presentedCN(server.port), 'new')
    // Verified against the new certificate only; the old one no longer verifies a new connection.
    const fresh = await curl(['--cacert', newPair.cert, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${server.port}/health`])
    assert.equal(fresh.stdout.toString(), '200', fresh.stderr)
    const stale = await curl(['--cacert', oldPair.cert, '-o', '/dev/null', `https://127.0.0.1:${server.port}/health`])
    assert.notEqual(stale.code, 0)

    for (const { flag, location, data, patch } of uploads) {
      const done = await patch
      assert.equal(done.code, 0, `${flag}: ${done.stderr}`)
      assert.equal(done.stdout.toString(), `${flag === '--http2' ? '2' : '1.1'} 204`)
      const head = await curl(['--cacert', newPair.cert, ...TUS, '-I', location])
      assert.equal(parseHead(head.stdout).headers['upload-offset'], String(data.length))
      const stored = await curl(['--cacert', newPair.cert, location])
      assert.equal(sha256(stored.stdout), sha256(data), `${flag}: stored bytes differ`)
    }
    // And they finished after the reload.
    const log = server.stderr
    assert.ok(log.indexOf('SIGHUP: reloaded') < log.indexOf('upload finished'), log)
  })

  test('a reload that fails keeps the pair that works', async () => {
    // The new certificate with the old key: a renewer that has written one file of two.
    replace(oldPair.key, key)
    server.child.kill('SIGHUP')
    await waitFor('the failed reload to be logged', () => server.stderr.includes('TLS certificate not reloaded'))
    assert.match(server.stderr, /ERROR .*SIGHUP: TLS certificate not reloaded; still serving the previous one .*does not belong to the certificate/)
    assert.equal(presentedCN(server.port), 'new')
    const r = await curl(['--cacert', newPair.cert, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${server.port}/health`])
    assert.equal(r.stdout.toString(), '200')
    assert.equal(server.child.exitCode, null, 'tusgate exited')
  })
})
