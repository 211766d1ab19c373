// Plain uploads with tus-js-client: whole file in one PATCH (default chunkSize),
// fixed 1 MiB chunks, POST + X-HTTP-Method-Override instead of PATCH, and
// fs.ReadStream / generic Readable inputs. Every case checks HEAD offsets and
// the sha256 of the bytes served back by GET. Under a draft protocol
// (TUS_PROTOCOL) the same cases run as the draft's creation and appends.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import { Readable } from 'node:stream'

import {
  MiB,
  assertStored,
  chunkLabel,
  creationRequests,
  describeWithServer,
  patchRequests,
  randomData,
  splitBuffer,
  uploadAll,
  writeTempFile,
} from './harness.mjs'

const SIZES = [
  ['0 B', 0],
  ['1 B', 1],
  ['5 MiB + 1 B', 5 * MiB + 1],
  ['64 MiB', 64 * MiB],
]

describeWithServer('single request (default chunkSize)', (server, test) => {
  for (const [label, size] of SIZES) {
    test(label, async () => {
      const data = randomData(size)
      const { url, requests } = await uploadAll(data, { endpoint: server.endpoint })
      assert.equal(creationRequests(requests).length, 1)
      // A zero-length upload is complete after the POST; anything else is one PATCH.
      assert.equal(patchRequests(requests).length, size === 0 ? 0 : 1)
      await assertStored(url, data)
    })
  }
})

describeWithServer('chunkSize 1 MiB', (server, test) => {
  for (const [label, size] of SIZES.slice(1)) {
    test(label, async () => {
      const data = randomData(size)
      const { url, requests } = await uploadAll(data, {
        endpoint: server.endpoint,
        chunkSize: 1 * MiB,
      })
      assert.equal(patchRequests(requests).length, Math.ceil(size / MiB))
      await assertStored(url, data)
    })
  }
})

describeWithServer('overridePatchMethod', (server, test) => {
  for (const chunkSize of [Infinity, 1 * MiB]) {
    test(`5 MiB + 1 B, chunkSize ${chunkLabel(chunkSize)}`, async () => {
      const data = randomData(5 * MiB + 1)
      const { url, requests } = await uploadAll(data, {
        endpoint: server.endpoint,
        chunkSize,
        overridePatchMethod: true,
      })
      const patches = patchRequests(requests)
      assert.ok(patches.length >= 1)
      assert.ok(patches.every((r) => r.method === 'POST'), 'data sent as POST + override')
      await assertStored(url, data)
    })
  }
})

describeWithServer('stream inputs', (server, test) => {
  for (const chunkSize of [Infinity, 1 * MiB]) {
    test(`fs.ReadStream, 5 MiB + 1 B, chunkSize ${chunkLabel(chunkSize)}`, async () => {
      const data = randomData(5 * MiB + 1)
      const file = writeTempFile(server.tmpDir, data)
      const { url } = await uploadAll(fs.createReadStream(file), {
        endpoint: server.endpoint,
        chunkSize,
      })
      await assertStored(url, data)
    })
  }

  test('generic Readable with uploadSize, chunkSize 1 MiB', async () => {
    const data = randomData(5 * MiB + 1)
    const { url } = await uploadAll(Readable.from(splitBuffer(data, 256 * 1024)), {
      endpoint: server.endpoint,
      chunkSize: 1 * MiB,
      uploadSize: data.length,
    })
    await assertStored(url, data)
  })
})
