//! The draft's `104 (Upload Resumption Supported)` on the wire (issue 13): with `-draft-104`, a
//! draft creation over HTTP/1.1 gets a 104 naming its upload before the server reads its body,
//! as one whole message ahead of the final response, also when requests are pipelined and with
//! `Expect: 100-continue`. Responses are read with httparse, a strict parser, and the 104's
//! bytes compared exactly. tusgate-only: tusd has no `-draft-104` (it always sends its 104).

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::Server;
use crate::is_tusgate;

const CREATION_HEADERS: &str = "Upload-Draft-Interop-Version: 9\r\nUpload-Complete: ?1\r\n";

/// One response as it came: status, fields, body, and its bytes.
struct Message {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    raw: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads whole responses off one connection, never further than the message asked for: a 1xx
/// ends at its head, a final response carries `Content-Length` bytes (tusgate's all do).
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    fn new(stream: TcpStream) -> Self {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16 << 10];
        let n = self
            .stream
            .read(&mut chunk)
            .expect("read (within the timeout)");
        assert!(n > 0, "the server closed the connection mid-message");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn message(&mut self) -> Message {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut fields);
            match response.parse(&self.buf).expect("a well-formed response") {
                httparse::Status::Partial => self.fill(),
                httparse::Status::Complete(head) => {
                    let status = response.code.expect("status");
                    let headers: Vec<(String, String)> = response
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8(h.value.to_vec()).expect("utf-8");
                            (h.name.to_owned(), value)
                        })
                        .collect();
                    let length = if (100..200).contains(&status) {
                        0
                    } else {
                        headers
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                            .map_or(0, |(_, v)| v.parse::<usize>().expect("length"))
                    };
                    while self.buf.len() < head + length {
                        self.fill();
                    }
                    let raw: Vec<u8> = self.buf.drain(..head + length).collect();
                    return Message {
                        status,
                        headers,
                        body: raw[head..].to_vec(),
                        raw,
                    };
                }
            }
        }
    }
}

/// The head of a draft creation announcing `length` bytes of content.
fn creation_head(s: &Server, length: usize, extra: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\n{CREATION_HEADERS}Content-Length: {length}\r\n{extra}\r\n",
        s.base_path, s.addr
    )
}

/// Checks a 104 against the draft's rules and returns its `Location`.
fn assert_104(s: &Server, message: &Message) -> String {
    assert_eq!(message.status, 104);
    assert!(
        message
            .raw
            .starts_with(b"HTTP/1.1 104 Upload Resumption Supported\r\n"),
        "status line: {:?}",
        String::from_utf8_lossy(&message.raw)
    );
    assert!(message.raw.ends_with(b"\r\n\r\n"));
    assert_eq!(message.header("Upload-Draft-Interop-Version"), Some("9"));
    assert!(message.header("Upload-Limit").is_some(), "Upload-Limit");
    let location = message.header("Location").expect("Location").to_owned();
    assert!(
        location.starts_with(&s.url(&s.base_path)),
        "{location} is not an upload URL of {}",
        s.base_path
    );
    location
}

/// The offset the server has for an upload, by draft offset retrieval.
fn offset_of(s: &Server, location: &str) -> u64 {
    let mut stream = s.connect();
    let head = format!(
        "HEAD {} HTTP/1.1\r\nHost: {}\r\nUpload-Draft-Interop-Version: 9\r\n\r\n",
        s.path_of(location),
        s.addr
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut reader = Reader::new(stream);
    let message = reader.message();
    assert!(message.status < 300, "offset retrieval: {}", message.status);
    message
        .header("Upload-Offset")
        .expect("Upload-Offset")
        .parse()
        .expect("offset")
}

#[test]
fn a_draft_creation_gets_its_104_before_the_body_is_read() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&["-draft-104"]);
    let mut stream = s.connect();
    stream
        .write_all(creation_head(&s, 10, "").as_bytes())
        .expect("write");
    let mut reader = Reader::new(stream);
    // No byte of content sent yet: the 104 comes anyway, and nothing after it.
    let location = assert_104(&s, &reader.message());
    assert!(
        reader.buf.is_empty(),
        "more than the 104 before the content"
    );
    // (Asking its offset now would end this request: a new request for an upload hands it
    // over, draft §"Upload Creation".)
    reader.stream.write_all(b"0123456789").expect("write");
    let last = reader.message();
    assert_eq!(last.status, 201, "{}", String::from_utf8_lossy(&last.body));
    assert_eq!(last.header("Upload-Complete"), Some("?1"));
    assert_eq!(offset_of(&s, &location), 10);
}

#[test]
fn pipelined_draft_creations_each_get_their_104_then_their_response() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&["-draft-104"]);
    let mut stream = s.connect();
    let mut bytes = Vec::new();
    for content in [&b"first"[..], b"second!", b"third..."] {
        bytes.extend_from_slice(creation_head(&s, content.len(), "").as_bytes());
        bytes.extend_from_slice(content);
    }
    stream.write_all(&bytes).expect("write");
    let mut reader = Reader::new(stream);
    let mut locations = Vec::new();
    for length in [5, 7, 8] {
        let location = assert_104(&s, &reader.message());
        let last = reader.message();
        assert_eq!(last.status, 201);
        assert_eq!(offset_of(&s, &location), length);
        locations.push(location);
    }
    locations.dedup();
    assert_eq!(locations.len(), 3, "three uploads");
}

#[test]
fn expect_100_continue_gets_the_104_and_the_100_as_whole_messages() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&["-draft-104"]);
    let mut stream = s.connect();
    stream
        .write_all(creation_head(&s, 4, "Expect: 100-continue\r\n").as_bytes())
        .expect("write");
    let mut reader = Reader::new(stream);
    // The 104 goes out once the upload exists, before the body is asked for; the 100 when it
    // is. The draft: a 104 does not replace the 100.
    assert_104(&s, &reader.message());
    assert_eq!(reader.message().raw, b"HTTP/1.1 100 Continue\r\n\r\n");
    reader.stream.write_all(b"data").expect("write");
    assert_eq!(reader.message().status, 201);
}

#[test]
fn without_the_switch_no_104_is_sent() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&[]);
    let mut stream = s.connect();
    let mut bytes = creation_head(&s, 4, "").into_bytes();
    bytes.extend_from_slice(b"data");
    stream.write_all(&bytes).expect("write");
    let mut reader = Reader::new(stream);
    assert_eq!(reader.message().status, 201);
}

#[test]
fn a_creation_cut_off_after_its_104_is_resumed_from_the_104s_location() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&["-draft-104"]);
    let mut stream = s.connect();
    let mut bytes = creation_head(&s, 10, "").into_bytes();
    bytes.extend_from_slice(b"01234");
    stream.write_all(&bytes).expect("write");
    let mut reader = Reader::new(stream);
    let location = assert_104(&s, &reader.message());
    // The network drops: the client knows only the 104's Location.
    drop(reader);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(offset_of(&s, &location), 5);
    let mut stream = s.connect();
    let append = format!(
        "PATCH {} HTTP/1.1\r\nHost: {}\r\nUpload-Draft-Interop-Version: 9\r\n\
         Upload-Offset: 5\r\nUpload-Complete: ?1\r\nContent-Type: application/partial-upload\r\n\
         Content-Length: 5\r\n\r\n56789",
        s.path_of(&location),
        s.addr
    );
    stream.write_all(append.as_bytes()).expect("write");
    let mut reader = Reader::new(stream);
    let last = reader.message();
    assert!(last.status < 300, "append: {}", last.status);
    assert_eq!(offset_of(&s, &location), 10);
}
