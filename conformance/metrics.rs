//! `/metrics` keeps tusd's metric names, so existing dashboards work.

use crate::harness::Server;

#[test]
fn tusd_metric_names() {
    let s = Server::start(&[]);
    let upload = s.create(Some(3));
    s.patch(&upload, 0, b"abc").status(204);
    s.patch(&upload, 1, b"x").status(409);
    let text = s.req("GET", "/metrics").send().status(200).body_text();
    for needle in [
        "tusd_requests_total{method=\"POST\"} 1",
        "tusd_requests_total{method=\"PATCH\"} 2",
        "tusd_errors_total{code=\"ERR_MISMATCHED_OFFSET\",status=\"409\"} 1",
        "tusd_bytes_received 3",
        "tusd_uploads_created 1",
        "tusd_uploads_finished 1",
        "tusd_connections_open",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
