//! Absolute `Location` URLs: from Host, and from forwarding headers only with `-behind-proxy`
//! (tusd's `getHostAndProtocol`).

use crate::harness::Server;

fn location(s: &Server, headers: &[(&str, &str)]) -> String {
    let mut req = s.tus("POST", "").header("Upload-Length", "1");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let url = req.send().status(201).header("Location").expect("Location");
    url[..url.rfind('/').expect("slash") + 1].to_owned()
}

#[test]
fn forwarded_headers_are_ignored_by_default() {
    let s = Server::start(&[]);
    let got = location(
        &s,
        &[
            ("X-Forwarded-Host", "proxy.example"),
            ("X-Forwarded-Proto", "https"),
        ],
    );
    assert_eq!(got, s.url("/files/"));
}

#[test]
fn x_forwarded_headers_behind_proxy() {
    let s = Server::start(&["-behind-proxy"]);
    assert_eq!(
        location(
            &s,
            &[
                ("X-Forwarded-Host", "proxy.example"),
                ("X-Forwarded-Proto", "https")
            ]
        ),
        "https://proxy.example/files/"
    );
    assert_eq!(
        location(
            &s,
            &[
                ("X-Forwarded-Host", "proxy.example:443"),
                ("X-Forwarded-Proto", "https")
            ]
        ),
        "https://proxy.example/files/"
    );
    assert_eq!(
        location(
            &s,
            &[
                ("X-Forwarded-Host", "p.example:8443"),
                ("X-Forwarded-Proto", "https")
            ]
        ),
        "https://p.example:8443/files/"
    );
}

#[test]
fn forwarded_wins_over_x_forwarded() {
    let s = Server::start(&["-behind-proxy"]);
    let got = location(
        &s,
        &[
            ("X-Forwarded-Host", "x.example"),
            (
                "Forwarded",
                "for=192.0.2.1;host=\"fw.example:443\";proto=https",
            ),
        ],
    );
    assert_eq!(got, "https://fw.example/files/");
}

#[test]
fn invalid_proto_is_ignored() {
    let s = Server::start(&["-behind-proxy"]);
    assert_eq!(
        location(
            &s,
            &[
                ("X-Forwarded-Host", "p.example:80"),
                ("X-Forwarded-Proto", "ftp")
            ]
        ),
        "http://p.example/files/"
    );
}
