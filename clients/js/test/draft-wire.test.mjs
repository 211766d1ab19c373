// The draft's wire at the interop version of this run (TUS_PROTOCOL: ietf-draft-05 = 6,
// ietf-draft-03 = 5), raw requests shaped as tus-js-client's, for the places where tusgate and
// tusd v2.10.1 (-enable-experimental-protocol) answer differently. Each case states what the
// draft (shared/reference/rufh-draft.md, and the draft of that interop version where it
// differs) asks and encodes both servers' answers, so a change on either side shows up here.
// Under tus 1.0 (the default TUS_PROTOCOL) the cases are skipped: they are the draft's.
//
// Verdicts (who follows the draft), one per case below:
//  - creation and append responses: the draft says a server SHOULD include Upload-Complete,
//    and MUST include it with a true value when an append completes the upload. tusgate does;
//    tusd sends only Upload-Offset (Upload-Complete only on HEAD). tusgate is right.
//  - mismatching offset: the draft says 409 MUST carry `Upload-Complete: ?0` and the correct
//    Upload-Offset (a problem document is optional). tusgate sends both and the problem
//    document; tusd sends a text 409 without either. tusgate is right.
//  - an append without `Content-Type: application/partial-upload` at interop 6 (the type is
//    required since draft -04 = interop 6, not at interop 5): both refuse it, tusgate with 415
//    (Unsupported Media Type, RFC 9110 §15.5.16), tusd with 400; both accept it at interop 5.
//    Both follow the draft, which names no status; 415 is the precise one.
//  - `Upload-Complete: ?1` on an append that ends short of the known length: the lengths the
//    request implies and the recorded one disagree, which the draft says MUST NOT happen and
//    answers with the inconsistent-length problem. tusgate refuses with that problem (before
//    reading the content when Content-Length told it, else keeping what arrived); tusd
//    answers 204 and leaves the upload silently incomplete. tusgate is right.

import assert from 'node:assert/strict'

import {
  DRAFT_INTEROP,
  describeWithServer,
  isDraft,
  isTusgate,
  request,
} from './harness.mjs'

const skip = !isDraft() && 'the IETF draft only (set TUS_PROTOCOL=ietf-draft-05 or -03)'
const PARTIAL_UPLOAD = 'application/partial-upload'

function draft(method, url, headers = {}, body = null) {
  const sized = body === null ? {} : { 'Content-Length': String(body.length) }
  return request(method, url, {
    tusResumable: false,
    body,
    headers: { 'Upload-Draft-Interop-Version': DRAFT_INTEROP, ...sized, ...headers },
  })
}

/** A careful creation (`?0`, no content) of an upload of `length` bytes; returns its URL. */
async function create(server, length) {
  const res = await draft('POST', server.endpoint, {
    'Upload-Complete': '?0',
    'Upload-Length': String(length),
  }, Buffer.alloc(0))
  assert.equal(res.status, 201, `creation: ${res.status} ${res.body}`)
  assert.ok(res.headers.location, 'creation: Location')
  assert.equal(res.headers['tus-resumable'], undefined, 'creation answered as tus 1.0')
  if (isTusgate()) {
    assert.equal(res.headers['upload-complete'], '?0', 'creation: Upload-Complete')
  } else {
    assert.equal(res.headers['upload-complete'], undefined, 'tusd: creation Upload-Complete')
  }
  return new URL(res.headers.location, server.endpoint).href
}

function append(url, offset, body, complete, contentType = PARTIAL_UPLOAD) {
  return draft('PATCH', url, {
    'Upload-Offset': String(offset),
    'Upload-Complete': complete ? '?1' : '?0',
    ...(contentType ? { 'Content-Type': contentType } : {}),
  }, body)
}

async function offsetOf(url) {
  const res = await draft('HEAD', url)
  assert.equal(res.status, 204, `offset retrieval: ${res.status}`)
  return { offset: Number(res.headers['upload-offset']), complete: res.headers['upload-complete'] }
}

describeWithServer(`draft wire, interop ${DRAFT_INTEROP ?? '-'}`, (server, test) => {
  test('append responses say Upload-Complete (tusd: only Upload-Offset)', async () => {
    const url = await create(server, 10)
    const first = await append(url, 0, Buffer.from('abcd'), false)
    const last = await append(url, 4, Buffer.from('efghij'), true)
    for (const [res, complete] of [[first, '?0'], [last, '?1']]) {
      assert.equal(res.status, 204)
      assert.equal(
        res.headers['upload-complete'],
        isTusgate() ? complete : undefined,
        'append response Upload-Complete',
      )
    }
    assert.deepEqual(await offsetOf(url), { offset: 10, complete: '?1' })
  }, { skip })

  test('mismatching offset: 409 with Upload-Offset and Upload-Complete: ?0 (tusd: neither)', async () => {
    const url = await create(server, 10)
    const res = await append(url, 5, Buffer.from('xyz'), false)
    assert.equal(res.status, 409)
    if (isTusgate()) {
      assert.equal(res.headers['upload-offset'], '0')
      assert.equal(res.headers['upload-complete'], '?0')
      assert.equal(res.headers['content-type'], 'application/problem+json')
      const problem = JSON.parse(res.body)
      assert.equal(
        problem.type,
        'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
      )
      assert.equal(problem['expected-offset'], 0)
      assert.equal(problem['provided-offset'], 5)
    } else {
      assert.equal(res.headers['upload-offset'], undefined)
      assert.equal(res.headers['upload-complete'], undefined)
      assert.match(String(res.body), /^ERR_MISMATCHED_OFFSET/)
    }
    assert.deepEqual(await offsetOf(url), { offset: 0, complete: '?0' })
  }, { skip })

  test('an append without application/partial-upload: refused at interop 6, fine at 5', async () => {
    const url = await create(server, 4)
    const res = await append(url, 0, Buffer.from('abcd'), true, null)
    if (DRAFT_INTEROP === '5') {
      assert.equal(res.status, 204, `interop 5 needs no media type: ${res.status} ${res.body}`)
      assert.deepEqual(await offsetOf(url), { offset: 4, complete: '?1' })
    } else {
      assert.equal(res.status, isTusgate() ? 415 : 400, `${res.body}`)
      assert.deepEqual(await offsetOf(url), { offset: 0, complete: '?0' })
    }
  }, { skip })

  for (const framing of ['Content-Length', 'chunked']) {
    test(`Upload-Complete: ?1 short of the known length, ${framing} (tusd: 204, silently incomplete)`, async () => {
      const url = await create(server, 10)
      const body = Buffer.from('abcdef')
      const res = await draft('PATCH', url, {
        'Upload-Offset': '0',
        'Upload-Complete': '?1',
        'Content-Type': PARTIAL_UPLOAD,
        ...(framing === 'chunked'
          ? { 'Transfer-Encoding': 'chunked' }
          : { 'Content-Length': String(body.length) }),
      }, body)
      // With a Content-Length tusgate sees the inconsistency before reading the content and
      // stores nothing; chunked, it learns it when the content ends and keeps what arrived.
      let kept = 6
      if (isTusgate()) {
        assert.equal(res.status, 400, `${res.body}`)
        assert.equal(res.headers['upload-complete'], '?0')
        assert.equal(
          JSON.parse(res.body).type,
          'https://iana.org/assignments/http-problem-types#inconsistent-upload-length',
        )
        if (framing === 'Content-Length') kept = 0
      } else {
        assert.equal(res.status, 204)
        assert.equal(res.headers['upload-complete'], undefined)
      }
      // Either way the upload is resumable, not complete.
      assert.deepEqual(await offsetOf(url), { offset: kept, complete: '?0' })
      const rest = await append(url, kept, Buffer.from('abcdefghij').subarray(kept), true)
      assert.equal(rest.status, 204)
      assert.deepEqual(await offsetOf(url), { offset: 10, complete: '?1' })
    }, { skip })
  }
})
