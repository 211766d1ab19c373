//! What the server says when it starts, worded here so it is unit tested: the URL a client can
//! use (tusd's `You can now upload files to: <url>` line, which scripts wait for), and a warning
//! when it accepts uploads from anyone beyond this machine.
//!
//! tusd prints the address it is bound to, so `-host 0.0.0.0` (its default and ours) gives
//! `http://0.0.0.0:8080/files/`: a bind address, not a destination (browsers and curl on
//! Windows and macOS refuse it). We print the loopback address of the same family instead, and
//! a second line saying that other machines use this host's name or address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The URL of the tus endpoint for a client on this machine: an unspecified bind address
/// (`0.0.0.0`, `::`) becomes the loopback address of its family; any other is used as it is.
pub fn client_url(scheme: &str, addr: SocketAddr, base_path: &str) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}{base_path}", SocketAddr::new(ip, addr.port()))
}

/// For a server bound to all interfaces, the line that follows the URL: where the others find
/// it. `None` for a specific address, which the URL names already.
pub fn all_interfaces_note(scheme: &str, addr: SocketAddr, base_path: &str) -> Option<String> {
    addr.ip().is_unspecified().then(|| {
        format!(
            "Listening on all interfaces ({addr}): from other machines use this host's name or \
address, e.g. {scheme}://<host>:{}{base_path}",
            addr.port()
        )
    })
}

/// The startup warning for a server that takes uploads from anyone (`open`: tokenless uploads
/// allowed and no pre-create hook deciding) on an address other machines can reach (anything
/// but loopback). `None` when uploads are checked or only this machine can connect.
pub fn open_uploads_warning(addr: SocketAddr, open: bool) -> Option<String> {
    (open && !addr.ip().is_loopback()).then(|| {
        let (who, reach) = if addr.ip().is_unspecified() {
            (
                format!("this machine's port {}", addr.port()),
                format!("on all interfaces ({addr})"),
            )
        } else {
            (addr.to_string(), "on a non-loopback address".to_owned())
        };
        format!(
            "anyone who can reach {who} can upload files: uploads without a token are allowed \
(--allow-uploads-without-token) and the server listens {reach}. Set UPLOAD_SECRET so that \
every upload needs a granite-assets token, or listen on 127.0.0.1 only (--host 127.0.0.1)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn an_unspecified_bind_address_is_named_by_its_loopback() {
        assert_eq!(
            client_url("http", addr("0.0.0.0:8080"), "/files/"),
            "http://127.0.0.1:8080/files/"
        );
        assert_eq!(
            client_url("http", addr("[::]:8080"), "/files/"),
            "http://[::1]:8080/files/"
        );
        assert_eq!(
            client_url("https", addr("192.0.2.7:443"), "/"),
            "https://192.0.2.7:443/"
        );
        assert_eq!(
            client_url("http", addr("127.0.0.1:1080"), "/files/"),
            "http://127.0.0.1:1080/files/"
        );
    }

    #[test]
    fn all_interfaces_get_a_note_for_other_machines() {
        let note = all_interfaces_note("http", addr("0.0.0.0:8080"), "/files/").expect("note");
        assert!(note.contains("(0.0.0.0:8080)"), "{note}");
        assert!(note.ends_with("http://<host>:8080/files/"), "{note}");
        assert_eq!(
            all_interfaces_note("http", addr("127.0.0.1:8080"), "/files/"),
            None
        );
        assert_eq!(
            all_interfaces_note("http", addr("192.0.2.7:8080"), "/files/"),
            None
        );
    }

    #[test]
    fn open_uploads_are_warned_about_beyond_loopback_only() {
        let warning = open_uploads_warning(addr("0.0.0.0:8080"), true).expect("warning");
        assert!(
            warning.starts_with("anyone who can reach this machine's port 8080 "),
            "{warning}"
        );
        assert!(
            warning.contains("on all interfaces (0.0.0.0:8080)"),
            "{warning}"
        );
        assert!(warning.contains("UPLOAD_SECRET"), "{warning}");
        assert!(warning.contains("--host 127.0.0.1"), "{warning}");
        assert!(open_uploads_warning(addr("[::]:8080"), true).is_some());
        let warning = open_uploads_warning(addr("192.0.2.7:8080"), true).expect("warning");
        assert!(
            warning.starts_with("anyone who can reach 192.0.2.7:8080 "),
            "{warning}"
        );
        assert!(warning.contains("non-loopback"), "{warning}");
        assert_eq!(open_uploads_warning(addr("127.0.0.1:8080"), true), None);
        assert_eq!(open_uploads_warning(addr("[::1]:8080"), true), None);
        assert_eq!(open_uploads_warning(addr("0.0.0.0:8080"), false), None);
    }
}
