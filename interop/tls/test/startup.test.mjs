// Startup errors: a TLS pair that cannot be served stops tusgate with exit status 2 and one
// clear line before it listens (no startup line is printed).

import assert from 'node:assert/strict'
import path from 'node:path'
import { before, describe, test } from 'node:test'

import { makeCert, runTusgate, tempDir } from './harness.mjs'

describe('TLS startup errors', () => {
  let dir, a, b
  before(() => {
    dir = tempDir()
    a = makeCert(dir, 'a')
    b = makeCert(dir, 'b')
  })

  const serve = (...args) =>
    runTusgate(['-host=127.0.0.1', '-port=0', `-upload-dir=${path.join(dir, 'uploads')}`, '-allow-uploads-without-token', ...args])

  const refused = async (args, message) => {
    const r = await serve(...args)
    assert.equal(r.code, 2, `exit status for ${args.join(' ')}: ${r.stderr}`)
    assert.ok(r.stderr.includes(message), `stderr for ${args.join(' ')}:\n${r.stderr}`)
    assert.ok(!r.stdout.includes('You can now upload files to'), 'it listened before failing')
  }

  test('a key that does not belong to the certificate', async () => {
    await refused([`-tls-certificate=${a.cert}`, `-tls-key=${b.key}`], `the TLS key ${b.key} does not belong to the certificate ${a.cert}`)
  })

  test('a missing certificate or key file', async () => {
    const missing = path.join(dir, 'missing.pem')
    await refused([`-tls-certificate=${missing}`, `-tls-key=${a.key}`], `cannot read the TLS certificate file ${missing}`)
    await refused([`-tls-certificate=${a.cert}`, `-tls-key=${missing}`], `cannot read the TLS key file ${missing}`)
  })

  test('an unreadable key file', async () => {
    // CI runs as root, who reads files of any mode: a directory is unreadable for anyone.
    await refused([`-tls-certificate=${a.cert}`, `-tls-key=${dir}`], `cannot read the TLS key file ${dir}: Is a directory`)
  })

  test('files that hold no certificate or no key', async () => {
    await refused([`-tls-certificate=${a.key}`, `-tls-key=${a.key}`], `the TLS certificate file ${a.key} holds no PEM certificate`)
    await refused([`-tls-certificate=${a.cert}`, `-tls-key=${a.cert}`], `the TLS key file ${a.cert} holds no PEM private key`)
  })

  test('a certificate without a key, or a key without a certificate', async () => {
    await refused([`-tls-certificate=${a.cert}`], '--tls-certificate is set but --tls-key is not')
    await refused([`-tls-key=${a.key}`], '--tls-key is set but --tls-certificate is not')
  })

  test('an unknown mode', async () => {
    await refused([`-tls-certificate=${a.cert}`, `-tls-key=${a.key}`, '-tls-mode=tls11'], 'valid modes are tls13, tls12 (default), and tls12-strong')
  })

  test('-enable-h2c with TLS, as tusd refuses it', async () => {
    await refused([`-tls-certificate=${a.cert}`, `-tls-key=${a.key}`, '-enable-h2c'], '--enable-h2c cannot be combined with --tls-certificate')
  })
})
