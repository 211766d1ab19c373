// Termination extension through tus-js-client: tus.Upload.terminate(url) on a
// finished upload, and upload.abort(true) in the middle of an upload (between
// chunks and inside a PATCH). Afterwards HEAD and GET on the URL must be 404.
// Under a draft protocol this is the draft's cancellation (DELETE with the interop version).

import assert from 'node:assert/strict'

import {
  FAST_RETRIES,
  MiB,
  PROTOCOL,
  assertStored,
  describeWithServer,
  firedBeforeDone,
  head,
  randomData,
  request,
  startUpload,
  triggerAt,
  tus,
  uploadAll,
} from './harness.mjs'

async function assertGone(url) {
  assert.equal((await head(url)).status, 404, 'HEAD after termination')
  assert.equal((await request('GET', url)).status, 404, 'GET after termination')
}

describeWithServer('termination', (server, test) => {
  test('tus.Upload.terminate(url) on a finished upload', async () => {
    const data = randomData(1 * MiB + 1)
    const { url } = await uploadAll(data, { endpoint: server.endpoint })
    await assertStored(url, data)

    await tus.Upload.terminate(url, { protocol: PROTOCOL, retryDelays: FAST_RETRIES })
    await assertGone(url)
  })

  for (const point of ['between-chunks', 'mid-chunk']) {
    test(`abort(true) ${point}`, async () => {
      const data = randomData(8 * MiB + 1)
      const terminate = triggerAt(point, 2 * MiB, () => upload.upload.abort(true))
      const upload = startUpload(data, {
        endpoint: server.endpoint,
        chunkSize: 1 * MiB,
        ...terminate.options,
      })
      await firedBeforeDone(terminate.fired, upload.done)
      assert.ok(upload.upload.url, 'upload had been created')
      await assertGone(upload.upload.url)
    })
  }
})
