// tus-js-client 4.3.1 (its browser bundle) in headless Chromium (Debian's package, driven by
// playwright-core) uploading a Blob to tusgate over https, cross-origin from a page served by a
// second https server on 127.0.0.1.
//
// Chromium trusts the self-signed certificate through an SPKI pin
// (--ignore-certificate-errors-spki-list with the base64 SHA-256 of its public key), not
// --ignore-certificate-errors: only this key is accepted, and everything else about the
// connection (name, ALPN, TLS version) is checked as usual. A second browser without the pin
// must fail, which proves the pin is what makes it work.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'

import { chromium } from 'playwright-core'

import { MiB, curl, makeCert, parseHead, randomData, sha256, spkiHash, startTusgate, tempDir } from './harness.mjs'

const CHROMIUM = '/usr/bin/chromium'
const here = path.dirname(fileURLToPath(import.meta.url))
const TUS_BUNDLE = path.join(here, '..', 'node_modules', 'tus-js-client', 'dist', 'tus.min.js')

/** A page origin distinct from tusgate's: https on another port, the same certificate. */
function startPageServer(pair) {
  const server = https.createServer({ cert: fs.readFileSync(pair.cert), key: fs.readFileSync(pair.key) }, (req, res) => {
    if (req.url === '/tus.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(fs.readFileSync(TUS_BUNDLE))
    } else {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><title>upload</title><script src="/tus.min.js"></script>')
    }
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

async function launch(userDataDir, extraArgs) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  })
}

/** Runs one tus-js-client upload of `size` bytes (the same bytes as randomData(size, seed)) in the page. */
function uploadInPage(page, endpoint, size, seed) {
  return page.evaluate(
    async ({ endpoint, size, seed }) => {
      // The same sha256 chain as the harness's randomData, so node can check the stored bytes.
      const bytes = new Uint8Array(size)
      let block = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(String(seed))))
      for (let at = 0; at < size; at += block.length) {
        bytes.set(block.subarray(0, Math.min(block.length, size - at)), at)
        block = new Uint8Array(await crypto.subtle.digest('SHA-256', block))
      }
      return new Promise((resolve) => {
        const upload = new tus.Upload(new Blob([bytes]), {
          endpoint,
          chunkSize: 1024 * 1024,
          retryDelays: [],
          metadata: { filename: 'blob.bin', filetype: 'application/octet-stream' },
          onError: (error) => resolve({ error: String(error) }),
          onSuccess: () => resolve({ url: upload.url }),
        })
        upload.start()
      })
    },
    { endpoint, size, seed },
  )
}

describe('tus-js-client in headless Chromium over https', () => {
  let dir, pair, server, pages
  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/deps.sh installs Debian's chromium`)
    dir = tempDir()
    pair = makeCert(dir, 'localhost')
    server = await startTusgate([`-tls-certificate=${pair.cert}`, `-tls-key=${pair.key}`])
    pages = await startPageServer(pair)
  })
  after(async () => {
    pages?.close()
    await server?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  test('a Blob uploads in 1 MiB chunks over HTTP/2, and the stored bytes match', async () => {
    const browser = await launch(path.join(dir, 'profile-pinned'), [`--ignore-certificate-errors-spki-list=${spkiHash(pair.cert)}`])
    try {
      const page = await browser.newPage()
      // The protocol Chromium used for each response from tusgate, as the network stack saw it.
      const cdp = await browser.newCDPSession(page)
      await cdp.send('Network.enable')
      const protocols = []
      cdp.on('Network.responseReceived', ({ response }) => {
        if (response.url.startsWith(server.url)) protocols.push([response.url, response.protocol, response.status])
      })
      await page.goto(`https://127.0.0.1:${pages.address().port}/`)
      await page.waitForFunction(() => typeof tus !== 'undefined' && tus.isSupported)

      const size = 3 * MiB + 7
      const result = await uploadInPage(page, server.url, size, 42)
      assert.ok(result.url, `upload failed: ${result.error}`)
      assert.match(result.url, new RegExp(`^https://127\\.0\\.0\\.1:${server.port}/files/[0-9a-f]{32}$`))

      // POST (201) and four PATCHes (204), after their CORS preflights; every one over h2.
      // The DevTools events arrive on their own channel, after the page may already have seen
      // the last response (CI once had the last 204's event missing at this point): wait for
      // them, boundedly.
      for (let waited = 0; waited < 5000; waited += 50) {
        if (protocols.filter(([, , status]) => status === 204).length >= 4) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const statuses = protocols.map(([, , status]) => status)
      assert.equal(statuses.filter((s) => s === 201).length, 1, JSON.stringify(protocols))
      assert.equal(statuses.filter((s) => s === 204).length, 4, JSON.stringify(protocols))
      for (const [url, protocol] of protocols) assert.equal(protocol, 'h2', `${url} over ${protocol}`)

      const head = await curl(['--cacert', pair.cert, '-I', '-H', 'Tus-Resumable: 1.0.0', result.url])
      assert.equal(parseHead(head.stdout).headers['upload-offset'], String(size))
      const stored = await curl(['--cacert', pair.cert, result.url])
      assert.equal(stored.stdout.length, size)
      assert.equal(sha256(stored.stdout), sha256(randomData(size, 42)))
    } finally {
      await browser.close()
    }
  })

  test('without the SPKI pin Chromium refuses the self-signed certificate', async () => {
    const browser = await launch(path.join(dir, 'profile-unpinned'), [])
    try {
      const page = await browser.newPage()
      await assert.rejects(page.goto(`https://127.0.0.1:${pages.address().port}/`), /ERR_CERT_AUTHORITY_INVALID/)
    } finally {
      await browser.close()
    }
  })
})
