//! Logging never fails a request: with the log's reader gone (a log collector that died, a
//! full log disk), every request still gets its response. This checks tusgate's fix of
//! issue 9 (finding 8), not tusd behaviour: tusgate-only. So is the shape of the request log
//! line (issue 11): no empty `request_id`, durations with at most three decimals.

use std::time::{Duration, Instant};

use crate::harness::{Launch, Server};
use crate::is_tusgate;

#[test]
fn a_broken_stderr_does_not_fail_requests() {
    if !is_tusgate() {
        return;
    }
    for format in ["text", "json"] {
        // Every request below is logged; each write to stderr now fails with EPIPE.
        let s = Launch::default()
            .arg("-verbose")
            .arg(&format!("-log-format={format}"))
            .close_stderr()
            .start();
        for _ in 0..3 {
            let upload = s.create(Some(3));
            s.patch(&upload, 0, b"abc").status(204);
            s.tus("HEAD", &upload)
                .send()
                .status(200)
                .has("Upload-Offset", "3");
            s.patch(&upload, 0, b"abc").status(409);
            s.req("GET", "/health").send().status(200).body_is("OK\n");
        }
        s.tus("HEAD", "0123456789abcdef0123456789abcdef")
            .send()
            .status(404);
    }
}

/// The log line of the request to `path`, once it is written (after the response).
fn request_line(s: &Server, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains(path) && l.contains("request"))
        {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no request line for {path}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value after `name=` in a text log line, up to the next space.
fn text_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split(' ').next()
}

fn assert_millis(value: &str, line: &str) {
    let ms: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("ms={value}: {line}"));
    assert!(ms >= 0.0, "{line}");
    let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= 3, "ms with {decimals} decimals: {line}");
}

#[test]
fn request_lines_omit_a_missing_request_id_and_round_durations() {
    if !is_tusgate() {
        return;
    }
    let missing = "0123456789abcdef0123456789abcde0";
    let tagged = "0123456789abcdef0123456789abcde1";

    let s = Launch::default().arg("-verbose").start();
    s.tus("HEAD", missing).send().status(404);
    s.tus("HEAD", tagged)
        .header("X-Request-ID", "req-42")
        .send()
        .status(404);
    let line = request_line(&s, missing);
    assert!(!line.contains("request_id"), "{line}");
    assert_millis(text_field(&line, "ms").expect("ms"), &line);
    let line = request_line(&s, tagged);
    assert_eq!(
        text_field(&line, "request_id"),
        Some("\"req-42\""),
        "{line}"
    );
    assert_millis(text_field(&line, "ms").expect("ms"), &line);

    let s = Launch::default()
        .arg("-verbose")
        .arg("-log-format=json")
        .start();
    s.tus("HEAD", missing).send().status(404);
    let line = request_line(&s, missing);
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    let fields = &value["fields"];
    assert_eq!(fields["message"], "request", "{line}");
    assert!(fields.get("request_id").is_none(), "{line}");
    let ms = &fields["ms"];
    assert!(ms.is_number(), "ms is a number: {line}");
    assert_millis(&ms.to_string(), &line);
}
