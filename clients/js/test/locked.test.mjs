// Lock contention as tus-js-client meets it. While an upload's publish still holds its lock
// (here held 4 s by a failpoint, as a slow disk would), a client resuming the same upload gets
// `423 ERR_UPLOAD_LOCKED` with Retry-After from HEAD. tus-js-client 4.3.1 retries a 423, but
// on a 5xx HEAD it creates a new upload and sends everything again (tus-js-client #895):
// tusd answers a lock timeout with 500. tusgate only: tusd has no failpoints.

import assert from 'node:assert/strict'

import {
  MiB,
  assertStored,
  creationRequests,
  describeWithServer,
  isTusgate,
  patchRequests,
  randomData,
  startUpload,
} from './harness.mjs'

describeWithServer(
  'a HEAD that meets a held lock',
  (server, test) => {
    test(
      'is retried and resumes, never restarts from byte 0',
      async () => {
        const data = randomData(2 * MiB + 7)
        let patchStarted
        const started = new Promise((resolve) => {
          patchStarted = resolve
        })
        const first = startUpload(data, {
          endpoint: server.endpoint,
          onBeforeRequest: (req) => {
            if (req.getMethod() === 'PATCH') patchStarted()
          },
        })
        await started
        // The one PATCH carries every byte; half a second later its publish holds the lock.
        await new Promise((resolve) => setTimeout(resolve, 500))
        const statuses = []
        const second = startUpload(data, {
          uploadUrl: first.upload.url,
          endpoint: server.endpoint,
          retryDelays: [0, 500, 1000, 1500, 2000, 3000],
          onAfterResponse: (req, res) => {
            statuses.push(`${req.getMethod()} ${res.getStatus()}`)
          },
        })
        await Promise.all([first.done, second.done])
        assert.ok(statuses.includes('HEAD 423'), `no 423 seen: ${statuses}`)
        assert.equal(second.upload.url, first.upload.url, 'resumed the same upload')
        assert.equal(creationRequests(second.requests).length, 0, 'created a new upload')
        assert.equal(patchRequests(second.requests).length, 0, 'sent bytes again')
        await assertStored(first.upload.url, data)
      },
      { skip: !isTusgate() && 'tusgate only (failpoints)' },
    )
  },
  {
    args: ['-acquire-lock-timeout', '1s'],
    env: { TUSGATE_PAUSE_AT: 'upload:stored:4000' },
  },
)
