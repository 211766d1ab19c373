// What every TLS test needs: self-signed certificates made with the openssl CLI, a tusgate
// started on 127.0.0.1 with them, and curl run as a child process. Everything a test starts
// is stopped by it (`after`), and every wait is bounded.

import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const KiB = 1024
export const MiB = 1024 * KiB

export const TUSGATE = process.env.TUSGATE_BIN
if (!TUSGATE) throw new Error('set TUSGATE_BIN to the tusgate binary')

export function tempDir(prefix = 'tusgate-tls-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

/** A self-signed certificate for 127.0.0.1 and localhost, CN `name`; `ec` or `rsa`. */
export function makeCert(dir, name, kind = 'ec') {
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  const keyArgs =
    kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
  execFileSync(
    'openssl',
    [
      'req', '-x509', ...keyArgs, '-nodes', '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', key, '-out', cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  return { cert, key, name }
}

/** base64(sha256(SubjectPublicKeyInfo)): what Chromium's --ignore-certificate-errors-spki-list takes. */
export function spkiHash(certPath) {
  const pem = fs.readFileSync(certPath)
  const spki = new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })
  return crypto.createHash('sha256').update(spki).digest('base64')
}

/** The CN of the certificate a fresh TLS connection to `port` is shown. */
export function presentedCN(port) {
  const out = execFileSync(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'],
    { input: '', stdio: ['pipe', 'pipe', 'ignore'], timeout: 10_000 },
  ).toString('latin1')
  const subject = out.split('\n').find((l) => l.startsWith('subject='))
  assert.ok(subject, `no subject in s_client output:\n${out}`)
  return subject.replace(/^subject=\s*CN\s*=\s*/, '').trim()
}

/**
 * Starts tusgate with `args` (plus 127.0.0.1, port 0, its own upload dir, tokenless uploads)
 * and resolves once it prints its startup line.
 */
export async function startTusgate(args, { timeoutMs = 10_000 } = {}) {
  const dir = tempDir('tusgate-tls-server-')
  const child = spawn(
    TUSGATE,
    [
      '-host=127.0.0.1', '-port=0', `-upload-dir=${path.join(dir, 'uploads')}`,
      '-allow-uploads-without-token', ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TUSGATE_LOG: 'info' } },
  )
  const server = { child, dir, stdout: '', stderr: '', url: null, port: null }
  child.stdout.on('data', (d) => (server.stdout += d))
  child.stderr.on('data', (d) => (server.stderr += d))
  server.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const deadline = Date.now() + timeoutMs
  while (!server.url) {
    const match = server.stdout.match(/You can now upload files to: (\S+)/)
    if (match) {
      server.url = match[1]
      server.port = Number(new URL(server.url).port)
      break
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`tusgate did not start:\n${server.stdout}\n${server.stderr}`)
    }
    await sleep(20)
  }
  server.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await server.exited
      clearTimeout(timer)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return server
}

/** Runs tusgate expecting it to exit by itself; resolves to { code, stdout, stderr }. */
export function runTusgate(args, { timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(TUSGATE, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`tusgate ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** curl with `args`; resolves to { code, stdout (Buffer), stderr }. Bounded by --max-time. */
export function curl(args, { input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '60', ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    const out = []
    let stderr = ''
    child.stdout.on('data', (d) => out.push(d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }))
    if (input !== undefined) child.stdin.end(input)
  })
}

/** Parses `curl -D -` output: { status, headers (lower-case names) }, the last response only. */
export function parseHead(text) {
  const blocks = text.toString('latin1').replace(/\r/g, '').trim().split('\n\n')
  const lines = blocks[blocks.length - 1].split('\n')
  const status = Number(lines[0].split(' ')[1])
  const headers = {}
  for (const line of lines.slice(1)) {
    const at = line.indexOf(':')
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim()
  }
  return { status, headers }
}

export function randomData(size, seed = 1) {
  // Deterministic, incompressible enough: a sha256 chain.
  const out = Buffer.alloc(size)
  let block = crypto.createHash('sha256').update(String(seed)).digest()
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at)
    block = crypto.createHash('sha256').update(block).digest()
  }
  return out
}

export const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
