// curl against tusgate terminating TLS: a whole tus upload (creation, PATCH, HEAD, download)
// over HTTP/1.1 and over HTTP/2 chosen by ALPN, with the certificate verified for real
// (--cacert, the certificate names 127.0.0.1); tusd's three -tls-mode settings seen from the
// client side; the key formats openssl writes; and the handshake kept out of the accept loop.

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import {
  MiB,
  curl,
  makeCert,
  parseHead,
  randomData,
  runTusgate,
  sha256,
  startTusgate,
  tempDir,
} from './harness.mjs'

const TUS = ['-H', 'Tus-Resumable: 1.0.0']

/** Creation, one PATCH, HEAD and GET over `version` ('1.1' or '2'), each checked. */
async function uploadAndDownload(server, cert, version, data) {
  const flag = version === '2' ? '--http2' : '--http1.1'
  const common = [flag, '--cacert', cert, ...TUS]
  const created = await curl([
    ...common, '-D', '-', '-o', '/dev/null', '-w', '%{http_version}',
    '-X', 'POST', '-H', `Upload-Length: ${data.length}`, server.url,
  ])
  assert.equal(created.code, 0, created.stderr)
  const text = created.stdout.toString()
  assert.ok(text.endsWith(version), `creation over HTTP/${version}: ${text}`)
  const { status, headers } = parseHead(text.slice(0, -version.length))
  assert.equal(status, 201)
  const location = headers.location
  // An upload URL a client can follow: https, because tusgate terminated TLS.
  assert.match(location, new RegExp(`^https://127\\.0\\.0\\.1:${server.port}/files/[0-9a-f]{32}$`))

  const patched = await curl(
    [
      ...common, '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
      '-X', 'PATCH', '-H', 'Upload-Offset: 0',
      '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', '@-', location,
    ],
    { input: data },
  )
  assert.equal(patched.code, 0, patched.stderr)
  assert.equal(patched.stdout.toString(), `${version} 204`)

  const head = await curl([...common, '-I', '-w', '%{http_version}', location])
  assert.equal(head.code, 0, head.stderr)
  assert.ok(head.stdout.toString().endsWith(version))
  assert.equal(parseHead(head.stdout.toString().slice(0, -version.length)).headers['upload-offset'], String(data.length))

  const dir = tempDir()
  const file = path.join(dir, 'download')
  const download = await curl([flag, '--cacert', cert, '-o', file, '-w', '%{http_version} %{http_code}', location])
  assert.equal(download.code, 0, download.stderr)
  assert.equal(download.stdout.toString(), `${version} 200`)
  assert.equal(sha256((await import('node:fs')).readFileSync(file)), sha256(data))
}

describe('a tus upload and its download over TLS', () => {
  let dir, pair, server
  before(async () => {
    dir = tempDir()
    pair = makeCert(dir, 'localhost')
    server = await startTusgate([`-tls-certificate=${pair.cert}`, `-tls-key=${pair.key}`])
  })
  after(async () => server?.stop())

  test('the startup line names an https URL', () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/files\/$/)
  })

  for (const version of ['1.1', '2']) {
    test(`HTTP/${version} (ALPN)`, async () => {
      await uploadAndDownload(server, pair.cert, version, randomData(3 * MiB + 5, version.length))
    })
  }

  test('an HTTP/2 client that offers only http/1.1 by ALPN gets HTTP/1.1', async () => {
    // curl --http1.1 offers only "http/1.1"; the server must not switch to h2 on its own.
    const r = await curl(['--http1.1', '--cacert', pair.cert, '-o', '/dev/null', '-w', '%{http_version}', `${server.url.replace(/files\/$/, '')}health`])
    assert.equal(r.stdout.toString(), '1.1')
  })

  test('tusgate healthcheck --tls checks it (the container HEALTHCHECK)', async () => {
    const addr = `--addr=127.0.0.1:${server.port}`
    assert.equal((await runTusgate(['healthcheck', addr, '--tls'])).code, 0)
    assert.notEqual((await runTusgate(['healthcheck', addr])).code, 0)
  })

  test('plain HTTP on the TLS port is not served', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${server.port}/health`])
    assert.notEqual(r.stdout.toString(), '200')
  })
})

describe('-tls-mode, seen by a client', () => {
  let dir, ec, rsa
  before(() => {
    dir = tempDir()
    ec = makeCert(dir, 'ec')
    rsa = makeCert(dir, 'rsa', 'rsa')
  })

  // [mode, pair, curl options, expected to connect]
  const cases = [
    ['tls12', 'ec', ['--tlsv1.3'], true],
    ['tls12', 'ec', ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256'], true],
    ['tls12', 'ec', ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-CHACHA20-POLY1305'], true],
    // CBC suites are not in Mozilla's intermediate list that tusd uses.
    ['tls12', 'ec', ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-SHA'], false],
    ['tls12', 'ec', ['--tls-max', '1.1'], false],
    ['tls12', 'rsa', ['--tls-max', '1.2', '--ciphers', 'ECDHE-RSA-AES256-GCM-SHA384'], true],
    ['tls12-strong', 'ec', ['--tlsv1.3'], false],
    ['tls12-strong', 'ec', ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256'], false],
    ['tls12-strong', 'ec', ['--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES256-GCM-SHA384'], true],
    ['tls12-strong', 'rsa', ['--tls-max', '1.2', '--ciphers', 'ECDHE-RSA-AES256-GCM-SHA384'], true],
    ['tls13', 'ec', ['--tlsv1.3'], true],
    ['tls13', 'ec', ['--tls-max', '1.2'], false],
  ]
  for (const mode of ['tls12', 'tls12-strong', 'tls13']) {
    test(mode, async () => {
      for (const kind of ['ec', 'rsa']) {
        const pair = kind === 'ec' ? ec : rsa
        const server = await startTusgate([`-tls-certificate=${pair.cert}`, `-tls-key=${pair.key}`, `-tls-mode=${mode}`])
        try {
          for (const [m, k, options, connects] of cases) {
            if (m !== mode || k !== kind) continue
            const r = await curl(['--cacert', pair.cert, ...options, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${server.port}/health`])
            assert.equal(r.code === 0 && r.stdout.toString() === '200', connects, `${mode} ${kind} ${options.join(' ')}: ${r.code} ${r.stderr}`)
          }
        } finally {
          await server.stop()
        }
      }
    })
  }
})

describe('private keys in the formats openssl writes', () => {
  test('PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys load', async () => {
    const dir = tempDir()
    const rsa = makeCert(dir, 'rsa', 'rsa')
    const ec = makeCert(dir, 'ec')
    const pkcs1 = path.join(dir, 'rsa.pkcs1.key')
    const sec1 = path.join(dir, 'ec.sec1.key')
    execFileSync('openssl', ['rsa', '-traditional', '-in', rsa.key, '-out', pkcs1], { stdio: 'ignore' })
    execFileSync('openssl', ['ec', '-in', ec.key, '-out', sec1], { stdio: 'ignore' })
    for (const [cert, key, marker] of [
      [rsa.cert, rsa.key, 'BEGIN PRIVATE KEY'],
      [rsa.cert, pkcs1, 'BEGIN RSA PRIVATE KEY'],
      [ec.cert, sec1, 'BEGIN EC PRIVATE KEY'],
    ]) {
      assert.ok((await import('node:fs')).readFileSync(key, 'latin1').includes(marker), key)
      const server = await startTusgate([`-tls-certificate=${cert}`, `-tls-key=${key}`])
      try {
        const r = await curl(['--cacert', cert, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${server.port}/health`])
        assert.equal(r.stdout.toString(), '200', `${marker}: ${r.stderr}`)
      } finally {
        await server.stop()
      }
    }
  })
})

describe('the handshake runs outside the accept loop', () => {
  let dir, pair, server
  before(async () => {
    dir = tempDir()
    pair = makeCert(dir, 'localhost')
    server = await startTusgate([`-tls-certificate=${pair.cert}`, `-tls-key=${pair.key}`, '-network-timeout=2s'])
  })
  after(async () => server?.stop())

  test('silent clients do not stall others, and are closed after the network timeout', async () => {
    // Ten connections that never send a ClientHello: with the handshake in the accept loop the
    // first would block every later client.
    const silent = await Promise.all(
      Array.from({ length: 10 }, () =>
        new Promise((resolve, reject) => {
          const socket = net.connect(server.port, '127.0.0.1', () => resolve(socket))
          socket.on('error', reject)
        }),
      ),
    )
    const closed = silent.map((socket) => new Promise((resolve) => socket.on('close', () => resolve(Date.now()))))
    const started = Date.now()
    const r = await curl(['--cacert', pair.cert, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${server.port}/health`])
    assert.equal(r.stdout.toString(), '200', r.stderr)
    assert.ok(Date.now() - started < 1500, `a client behind silent ones waited ${Date.now() - started} ms`)
    // Each silent one is closed by the server once the 2 s network timeout has passed.
    const times = await Promise.race([
      Promise.all(closed),
      new Promise((_, reject) => setTimeout(() => reject(new Error('silent connections still open after 6 s')), 6000)),
    ])
    for (const at of times) assert.ok(at - started >= 1500, `closed after ${at - started} ms, before the timeout`)
    const metrics = await curl(['--cacert', pair.cert, `https://127.0.0.1:${server.port}/metrics`])
    // Only the metrics request's own connection is open now.
    assert.match(metrics.stdout.toString(), /^tusd_connections_open 1$/m)
  })
})
