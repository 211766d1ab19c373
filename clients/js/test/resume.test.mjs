// Resuming interrupted uploads with tus-js-client:
//  * the client aborts mid-upload (between chunks or inside a PATCH), then a
//    new Upload resumes it, via `uploadUrl` or via findPreviousUploads +
//    resumeFromPreviousUpload;
//  * the server process is SIGKILLed mid-upload and restarted on the same port
//    and upload dir, and the same Upload object retries and completes.
// Every case checks that the resumed upload continued from the server's offset
// (no second POST, no PATCH from offset 0) and that the stored bytes match.

import assert from 'node:assert/strict'

import {
  MiB,
  MemoryUrlStorage,
  PROTOCOL,
  assertStored,
  creationRequests,
  describeWithServer,
  firedBeforeDone,
  headOffset,
  isDraft,
  patchRequests,
  randomData,
  startUpload,
  triggerAt,
  uploadAll,
} from './harness.mjs'

const CHUNK = 1 * MiB

/** Interruptions happen after 3 chunks, or half way into the 4th PATCH's body. */
const INTERRUPT_AT = 3 * CHUNK
const POINTS = ['between-chunks', 'mid-chunk']

/** Retries spanning a server restart (6.5 s in total). */
const RESTART_RETRIES = [0, 500, 1000, 2000, 3000]

describeWithServer('resume after the client aborts', (server, test) => {
  const resumeWays = {
    'between-chunks': 'uploadUrl',
    'mid-chunk': 'findPreviousUploads',
  }
  for (const point of POINTS) {
    const way = resumeWays[point]
    test(`abort ${point}, resume via ${way}`, async (t) => {
      const data = randomData(10 * MiB + 1)
      const urlStorage = new MemoryUrlStorage()
      const options = { endpoint: server.endpoint, chunkSize: CHUNK, urlStorage }

      const abort = triggerAt(point, INTERRUPT_AT, () => first.upload.abort())
      const first = startUpload(data, { ...options, ...abort.options })
      await firedBeforeDone(abort.fired, first.done)
      const url = first.upload.url
      assert.ok(url, 'first upload has a URL')

      const offset = await headOffset(url)
      assertInterruptedAt(t, point, offset)

      const second =
        way === 'uploadUrl'
          ? await uploadAll(data, { ...options, uploadUrl: url })
          : await uploadAll(data, options, { resumePrevious: true })
      assert.equal(second.url, url, 'resumed the same upload')
      assertResumedFrom(second.requests, offset)
      await assertStored(url, data)
    })
  }
})

describeWithServer('resume after the server is SIGKILLed and restarted', (server, test) => {
  for (const point of POINTS) {
    test(`SIGKILL ${point}, same Upload object retries`, async (t) => {
      const data = randomData(16 * MiB + 1)
      let requestsBeforeCrash = null

      const crash = triggerAt(point, INTERRUPT_AT, async () => {
        requestsBeforeCrash = upload.requests.length
        await server.kill('SIGKILL')
        await server.restart()
      })
      const upload = startUpload(data, {
        endpoint: server.endpoint,
        chunkSize: CHUNK,
        retryDelays: RESTART_RETRIES,
        ...crash.options,
      })
      await firedBeforeDone(crash.fired, upload.done)
      const url = await upload.done

      assert.equal(creationRequests(upload.requests).length, 1, 'a single POST')
      const afterCrash = upload.requests.slice(requestsBeforeCrash)
      assert.ok(afterCrash.some((r) => r.method === 'HEAD'), 'client asked for the offset')
      const offsets = patchRequests(afterCrash).map((r) => Number(r.headers['Upload-Offset']))
      assert.ok(offsets.length > 0, 'PATCHes after the restart')
      assertInterruptedAt(t, point, offsets[0])
      assert.ok(offsets.every((o) => o >= INTERRUPT_AT), `PATCH offsets after restart: ${offsets}`)
      await assertStored(url, data)
    })
  }
})

// One upload, two protocols (tusgate's decision, src/draft/mod.rs): an upload created by
// one protocol is resumed by the other. Runs in the draft runs, pairing their draft with tus 1.0.
describeWithServer('resume across protocols', (server, test) => {
  for (const [from, to] of [[PROTOCOL, 'tus-v1'], ['tus-v1', PROTOCOL]]) {
    test(`created with ${from}, aborted between chunks, resumed with ${to}`, async () => {
      const data = randomData(6 * MiB + 1)
      const options = { endpoint: server.endpoint, chunkSize: CHUNK }
      const abort = triggerAt('between-chunks', INTERRUPT_AT, () => first.upload.abort())
      const first = startUpload(data, { ...options, protocol: from, ...abort.options })
      await firedBeforeDone(abort.fired, first.done)
      const url = first.upload.url
      assert.equal(await headOffset(url), INTERRUPT_AT, 'offset after interruption')

      const second = await uploadAll(data, { ...options, protocol: to, uploadUrl: url })
      assert.equal(second.url, url, 'resumed the same upload')
      assertResumedFrom(second.requests, INTERRUPT_AT)
      await assertStored(url, data)
    }, { skip: !isDraft() && 'needs a draft run (TUS_PROTOCOL) to mix with tus 1.0' })
  }
})

/**
 * The server kept what it had received: exactly 3 chunks when interrupted
 * between chunks; when interrupted mid-chunk, 3 chunks plus at most the half
 * chunk that was sent (tusd keeps all of it; dropping it is also valid tus).
 */
function assertInterruptedAt(t, point, offset) {
  t.diagnostic(`offset after interruption (${point}): ${offset}`)
  if (point === 'between-chunks') {
    assert.equal(offset, INTERRUPT_AT, 'offset after interruption')
  } else {
    assert.ok(
      offset >= INTERRUPT_AT && offset <= INTERRUPT_AT + CHUNK / 2,
      `offset after interruption ${offset} within the half chunk sent`,
    )
  }
}

/** The resuming Upload created nothing and its first PATCH started at `offset`. */
function assertResumedFrom(requests, offset) {
  assert.equal(creationRequests(requests).length, 0, 'no new upload created')
  assert.equal(requests[0].method, 'HEAD', 'resume starts with HEAD')
  const [firstPatch] = patchRequests(requests)
  assert.ok(firstPatch, 'resumed upload sent data')
  assert.equal(firstPatch.headers['Upload-Offset'], String(offset), 'first PATCH offset')
}
