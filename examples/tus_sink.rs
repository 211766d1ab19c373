//! The physical-limit reference of `benches/compare.sh`: the least a tus server can do, with
//! the standard library only. One thread per connection, blocking `read` into one reused
//! 1 MiB buffer and `write` to the file, keep-alive, no validation, no locking, no metadata
//! beyond a one-line `<id>.info` (the length) written at creation, as every tus server must.
//!
//! ```text
//! cargo build --release --example tus_sink
//! target/release/examples/tus_sink --listen 127.0.0.1:19000 --dir /tmp/sink [--fsync completion]
//! ```
//!
//! It answers just enough of tus for `tusgate bench`: `POST /files/` (with or without a body:
//! 201 + Location), `PATCH /files/<id>` (204 + Upload-Offset), `HEAD` (Upload-Offset,
//! Upload-Length) and `GET` (the bytes, through `sendfile` via `std::io::copy`). With
//! `--fsync completion` an upload's data is `fdatasync`ed when its last byte arrives. It exits
//! after `--max-seconds` (default 3600).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUF: usize = 1 << 20;
/// A connection silent for this long is closed.
const IDLE: Duration = Duration::from_secs(60);

struct Sink {
    dir: PathBuf,
    fsync: bool,
    next_id: AtomicU64,
    /// Upload lengths, for HEAD and for knowing when an upload completes.
    lengths: Mutex<HashMap<u64, u64>>,
}

fn main() {
    let mut listen = "127.0.0.1:19000".to_owned();
    let mut dir = PathBuf::from("./sink-data");
    let mut fsync = false;
    let mut max_seconds = 3600u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match arg.as_str() {
            "--listen" => listen = value(),
            "--dir" => dir = PathBuf::from(value()),
            "--fsync" => fsync = value() == "completion",
            "--max-seconds" => max_seconds = value().parse().unwrap_or(max_seconds),
            _ => {
                eprintln!(
                    "usage: tus_sink [--listen ADDR] [--dir DIR] [--fsync never|completion] [--max-seconds N]"
                );
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("tus_sink: {}: {e}", dir.display());
        std::process::exit(1);
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tus_sink: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let sink = Arc::new(Sink {
        dir,
        fsync,
        next_id: AtomicU64::new(1),
        lengths: Mutex::new(HashMap::new()),
    });
    eprintln!("tus_sink: listening on {listen}");
    let deadline = Instant::now() + Duration::from_secs(max_seconds);
    std::thread::spawn(move || {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        eprintln!("tus_sink: --max-seconds reached, exiting");
        std::process::exit(0);
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let sink = Arc::clone(&sink);
        std::thread::spawn(move || {
            let _ = serve(&sink, stream);
        });
    }
}

struct Head {
    method: String,
    path: String,
    content_length: u64,
    upload_length: Option<u64>,
}

fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut head = Head {
        method,
        path,
        content_length: 0,
        upload_length: None,
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            return Ok(Some(head));
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("upload-length") {
                head.upload_length = value.parse().ok();
            }
        }
    }
}

fn serve(sink: &Sink, stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    // The BufReader's own buffer is the 1 MiB receive buffer: body bytes are written from it.
    let mut reader = BufReader::with_capacity(BUF, stream);
    while let Some(head) = read_head(&mut reader)? {
        let id = head
            .path
            .rsplit('/')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        let response = match (head.method.as_str(), id) {
            ("POST", _) => {
                let id = sink.next_id.fetch_add(1, Ordering::Relaxed);
                let length = head.upload_length.unwrap_or(0);
                sink.lengths
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(id, length);
                std::fs::write(sink.dir.join(format!("{id}.info")), format!("{length}\n"))?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(sink.dir.join(id.to_string()))?;
                let got = receive(&mut reader, &mut file, head.content_length)?;
                finish(sink, &file, id, got)?;
                format!(
                    "HTTP/1.1 201 Created\r\nTus-Resumable: 1.0.0\r\nLocation: /files/{id}\r\nUpload-Offset: {got}\r\nContent-Length: 0\r\n\r\n"
                )
            }
            ("PATCH", Some(id)) => {
                // Appended: Upload-Offset is not checked, the client sends in order.
                let path = sink.dir.join(id.to_string());
                let mut file = OpenOptions::new().append(true).open(path)?;
                receive(&mut reader, &mut file, head.content_length)?;
                let end = file.metadata()?.len();
                finish(sink, &file, id, end)?;
                format!(
                    "HTTP/1.1 204 No Content\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {end}\r\n\r\n"
                )
            }
            ("HEAD", Some(id)) => match std::fs::metadata(sink.dir.join(id.to_string())) {
                Ok(meta) => {
                    let length = length_of(sink, id);
                    format!(
                        "HTTP/1.1 200 OK\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {}\r\nUpload-Length: {length}\r\nCache-Control: no-store\r\n\r\n",
                        meta.len()
                    )
                }
                Err(_) => not_found(),
            },
            ("GET", Some(id)) => {
                let path = sink.dir.join(id.to_string());
                match File::open(&path) {
                    Ok(mut file) => {
                        let len = file.metadata()?.len();
                        out.write_all(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
                        )?;
                        io::copy(&mut file, &mut out)?;
                        continue;
                    }
                    Err(_) => not_found(),
                }
            }
            _ => {
                discard(&mut reader, head.content_length)?;
                not_found()
            }
        };
        out.write_all(response.as_bytes())?;
    }
    Ok(())
}

fn not_found() -> String {
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
}

fn length_of(sink: &Sink, id: u64) -> u64 {
    sink.lengths
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&id)
        .copied()
        .unwrap_or(0)
}

/// With `--fsync completion`: fdatasync once the upload holds all its bytes.
fn finish(sink: &Sink, file: &File, id: u64, offset: u64) -> io::Result<()> {
    if sink.fsync && offset > 0 && offset == length_of(sink, id) {
        file.sync_data()?;
    }
    Ok(())
}

/// Copies `len` body bytes from the connection's buffer into `file`; returns how many.
fn receive(reader: &mut BufReader<TcpStream>, file: &mut File, len: u64) -> io::Result<u64> {
    let mut left = len;
    while left > 0 {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let n = available.len().min(left as usize);
        file.write_all(&available[..n])?;
        reader.consume(n);
        left -= n as u64;
    }
    Ok(len - left)
}

fn discard(reader: &mut BufReader<TcpStream>, len: u64) -> io::Result<()> {
    io::copy(&mut reader.by_ref().take(len), &mut io::sink())?;
    Ok(())
}
