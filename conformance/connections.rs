//! Connections that make no progress must not hold the server's file descriptors: a connection
//! that sends nothing, only the HTTP/2 preface, or goes quiet after its SETTINGS; one left idle
//! after a request, on HTTP/1.1 and HTTP/2; one whose client stopped reading a response; an
//! HTTP/2 client that grants no flow-control window, so its responses never move. Each is
//! closed after the network timeout, a cap on open connections keeps the server below its
//! file limit meanwhile, and shutdown does not wait for any of them; an upload whose body keeps
//! arriving is not cut however long it takes. These cases check tusgate's fix of issue 9
//! (finding 3) and of the HTTP/2 stall found in review, not tusd behaviour: tusgate-only.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Launch, Server, data, read_response};
use crate::is_tusgate;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A SETTINGS frame with no settings (length 0, type 4, no flags, stream 0).
const H2_EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// How far a silent connection gets before it goes quiet.
#[derive(Debug, Clone, Copy)]
enum Silence {
    Nothing,
    Preface,
    PrefaceAndSettings,
}

impl Silence {
    const ALL: [Silence; 3] = [
        Silence::Nothing,
        Silence::Preface,
        Silence::PrefaceAndSettings,
    ];
}

fn open_silent(s: &Server, silence: Silence) -> TcpStream {
    let mut stream = TcpStream::connect(&s.addr).expect("connect");
    match silence {
        Silence::Nothing => {}
        Silence::Preface => stream.write_all(H2_PREFACE).expect("preface"),
        Silence::PrefaceAndSettings => {
            stream.write_all(H2_PREFACE).expect("preface");
            stream.write_all(&H2_EMPTY_SETTINGS).expect("settings");
        }
    }
    stream
}

/// Reads (and discards) until the server closes the connection (EOF or reset): `Ok` with the
/// number of bytes read, or `Err` with it if the connection is still open at `deadline`.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> Result<usize, usize> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(total);
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(total);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(total);
            }
            Err(e) => panic!("unexpected read error: {e}"),
        }
    }
}

/// An HTTP/2 frame: 9-byte header, then `payload`.
fn h2_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream_id.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A HEADERS frame (END_STREAM | END_HEADERS) for `GET path` on `stream_id`.
fn h2_get(stream_id: u32, path: &str, authority: &str) -> Vec<u8> {
    // HPACK: :method GET (static 2), :scheme http (static 6), :path and :authority as
    // literals with indexed names (static 4 and 1).
    let mut block = vec![
        0x82,
        0x86,
        0x44,
        u8::try_from(path.len()).expect("short path"),
    ];
    block.extend_from_slice(path.as_bytes());
    block.push(0x41);
    block.push(u8::try_from(authority.len()).expect("short authority"));
    block.extend_from_slice(authority.as_bytes());
    h2_frame(1, 0x05, stream_id, &block)
}

/// Sends `GET /health` over cleartext HTTP/2 (prior knowledge) on a new connection and waits
/// for its `200` HEADERS frame; returns the connection, left open.
fn h2_health(s: &Server) -> TcpStream {
    let mut stream = s.connect();
    stream.write_all(H2_PREFACE).expect("preface");
    stream.write_all(&H2_EMPTY_SETTINGS).expect("settings");
    stream
        .write_all(&h2_get(1, "/health", &s.addr))
        .expect("headers");
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).expect("frame header");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("frame payload");
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if head[3] == 1 && stream_id == 1 {
            // No padding or priority flags from hyper; `:status: 200` is static entry 8.
            assert_eq!(payload.first(), Some(&0x88), "h2 response is not 200");
            return stream;
        }
    }
}

/// Under a file limit of 256, 300 connections that never send a request neither lock out new
/// clients nor drive the server into `Too many open files`; each is closed by the server.
#[test]
fn silent_connections_are_closed_and_do_not_exhaust_descriptors() {
    if !is_tusgate() {
        return;
    }
    assert!(
        std::process::Command::new("prlimit")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs prlimit (util-linux)"
    );
    // soft = hard, so the server's own raise to the hard limit cannot lift it.
    let s = Launch::default()
        .wrapper(&["prlimit", "--nofile=256:256"])
        .arg("-network-timeout=2s")
        .start();
    let mut silent: Vec<TcpStream> = (0..300)
        .map(|i| open_silent(&s, Silence::ALL[i % 3]))
        .collect();
    // Queued behind all of them: answered once the silent ones time out and make room.
    s.req("GET", "/health").send().status(200).body_is("OK\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, stream) in silent.iter_mut().enumerate() {
        assert!(
            read_until_closed(stream, deadline).is_ok(),
            "silent connection {i} ({:?}) is still open",
            Silence::ALL[i % 3]
        );
    }
    s.req("GET", "/health").send().status(200);
    let log = s.log();
    assert!(
        !log.contains("Too many open files"),
        "the server ran out of descriptors:\n{log}"
    );
}

/// Connections left idle after a request are closed after the network timeout, on both
/// protocols.
#[test]
fn idle_connections_are_closed_after_the_network_timeout() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&["-network-timeout=1s"]);
    let mut h1 = s.connect();
    h1.write_all(format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes())
        .expect("request");
    let resp = read_response(&mut h1, false);
    assert_eq!(resp.status, 200);
    let mut h2 = h2_health(&s);
    let deadline = Instant::now() + Duration::from_secs(20);
    assert!(
        read_until_closed(&mut h1, deadline).is_ok(),
        "idle HTTP/1.1 connection still open"
    );
    assert!(
        read_until_closed(&mut h2, deadline).is_ok(),
        "idle HTTP/2 connection still open"
    );
}

/// A client that stops reading a response is dropped once nothing could be written to it for
/// the network timeout, instead of holding the connection (and the open file) forever.
#[test]
fn a_client_that_stops_reading_is_dropped() {
    if !is_tusgate() {
        return;
    }
    // Larger than every socket buffer between the two ends can hold (rmem max + wmem max).
    const SIZE: usize = 48 << 20;
    let s = Server::start(&["-network-timeout=1s"]);
    let upload = s.create_complete(&data(SIZE));
    let mut stream = s.connect();
    stream
        .write_all(
            format!(
                "GET {upload} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                s.addr
            )
            .as_bytes(),
        )
        .expect("request");
    // Read nothing while the server's writes stay blocked past the timeout.
    std::thread::sleep(Duration::from_secs(4));
    let received = read_until_closed(&mut stream, Instant::now() + Duration::from_secs(30))
        .unwrap_or_else(|n| panic!("connection still open after {n} bytes"));
    assert!(
        received < SIZE,
        "the whole response ({received} bytes) was delivered to a client that stopped reading"
    );
    // The server is fine.
    s.req("GET", "/health").send().status(200);
}

/// SIGTERM with silent and idle connections open exits promptly: graceful shutdown waits for
/// requests, not for connections that have none.
#[test]
fn shutdown_does_not_wait_for_silent_or_idle_connections() {
    if !is_tusgate() {
        return;
    }
    let mut s = Server::start(&["-shutdown-timeout=60s", "-network-timeout=60s"]);
    let mut open: Vec<TcpStream> = (0..30)
        .map(|i| open_silent(&s, Silence::ALL[i % 3]))
        .collect();
    let mut h1 = s.connect();
    h1.write_all(format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes())
        .expect("request");
    assert_eq!(read_response(&mut h1, false).status, 200);
    open.push(h1);
    open.push(h2_health(&s));
    let status = s
        .terminate_within(Duration::from_secs(15))
        .expect("shutdown waited for connections without requests");
    assert!(status.success(), "exit status {status}");
    drop(open);
}

/// An HTTP/2 client that grants no flow-control window (`SETTINGS_INITIAL_WINDOW_SIZE` 0, no
/// WINDOW_UPDATE) but answers every ping stops the server from writing any response DATA, so
/// no write ever blocks. Its streams (here on a large public asset, and one answered 403) must
/// not hold the connection, its open files and read buffers forever: the connection is closed
/// once no response has made progress for the network timeout, and the server stays healthy.
#[test]
fn an_h2_client_that_grants_no_window_is_dropped() {
    if !is_tusgate() {
        return;
    }
    let s = Server::start(&["-network-timeout=2s"]);
    let asset = s.asset("public/big.bin");
    std::fs::create_dir_all(asset.parent().expect("parent")).expect("asset dir");
    std::fs::write(&asset, data(8 << 20)).expect("asset");
    let mut stream = s.connect();
    stream.write_all(H2_PREFACE).expect("preface");
    // SETTINGS_INITIAL_WINDOW_SIZE (4) = 0.
    stream
        .write_all(&h2_frame(4, 0, 0, &[0, 4, 0, 0, 0, 0]))
        .expect("settings");
    for id in [1, 3, 5, 7] {
        stream
            .write_all(&h2_get(id, "/assets/public/big.bin", &s.addr))
            .expect("headers");
    }
    stream
        .write_all(&h2_get(9, "/assets/private/nothing", &s.addr))
        .expect("headers");
    let opened = Instant::now();
    let deadline = opened + Duration::from_secs(15);
    let mut writer = stream.try_clone().expect("clone");
    let mut statuses = Vec::new();
    let mut pings = 0;
    let mut data_bytes = 0;
    let mut checked_health = false;
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        let mut head = [0u8; 9];
        match stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(_) => break true,
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if stream.read_exact(&mut payload).is_err() {
            break true;
        }
        let (kind, flags) = (head[3], head[4]);
        match kind {
            0 => data_bytes += len,
            1 => statuses.push(payload.first().copied()),
            // SETTINGS and PING without ACK are answered, as a live client would.
            4 if flags & 1 == 0 => {
                let _ = writer.write_all(&h2_frame(4, 1, 0, &[]));
            }
            6 if flags & 1 == 0 => {
                pings += 1;
                let _ = writer.write_all(&h2_frame(6, 1, 0, &payload));
            }
            _ => {}
        }
        // Meanwhile the server serves others.
        if statuses.len() == 5 && !checked_health {
            s.req("GET", "/health").send().status(200);
            checked_health = true;
        }
    };
    assert!(
        closed,
        "the stalled connection is still open after {:?} ({} HEADERS, {pings} pings answered, \
         {data_bytes} DATA bytes)",
        opened.elapsed(),
        statuses.len()
    );
    assert!(
        checked_health,
        "not every stream was answered: {statuses:?}"
    );
    assert_eq!(data_bytes, 0, "DATA sent beyond a zero window");
    s.req("GET", "/health").send().status(200);
}

/// The progress rule applies to responses being sent, not to requests being read: a PATCH
/// whose body keeps arriving in small pieces for longer than the network timeout succeeds.
#[test]
fn a_slow_upload_that_keeps_sending_is_not_cut() {
    if !is_tusgate() {
        return;
    }
    const PIECES: usize = 10;
    const PIECE: usize = 1000;
    let s = Server::start(&["-network-timeout=2s"]);
    let body = data(PIECES * PIECE);
    let upload = s.create(Some(body.len() as u64));
    let (mut stream, _) = s
        .tus("PATCH", &upload)
        .header("Upload-Offset", "0")
        .chunk(&body)
        .send_partial(body.len() as u64, &body[..PIECE]);
    let started = Instant::now();
    for piece in body.chunks(PIECE).skip(1) {
        std::thread::sleep(Duration::from_millis(500));
        stream
            .write_all(piece)
            .expect("the server closed the upload");
    }
    assert!(started.elapsed() > Duration::from_secs(4));
    let resp = read_response(&mut stream, false);
    assert_eq!(resp.status, 204, "{:?}", resp.body_text());
    assert_eq!(
        resp.header("upload-offset").as_deref(),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(s.stored(&upload), body);
}
