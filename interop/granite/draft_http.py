"""Raw HTTP/1.1 for the draft cases (test_draft.py, test_draft_104.py): requests shaped the way
URLSession sends them, and the checks every draft response gets.

By hand rather than http.client or requests: those take any 1xx but 100 for the final
response, and the draft's 104 must be seen (and waited for) before the content is sent.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from granite_assets import AssetVisibility

from conftest import HTTP_TIMEOUT_S

# The interop versions URLSession-shaped requests use: 8 (iOS 26.2) and 9 (draft -12 to -15).
INTEROP_VERSIONS = [8, 9]
PARTIAL_UPLOAD = "application/partial-upload"


class Reply:
    """A final response: status, headers (lower-case names), body, and the interim (1xx)
    responses that came before it as (status, headers) pairs."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes,
                 interim: list[tuple[int, dict[str, str]]]):
        self.status, self.headers, self.body, self.interim = status, headers, body, interim

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers} {self.body[:300]!r} interim={self.interim}>"


class Exchange:
    """One HTTP/1.1 request on its own connection (`Connection: close`): the headers go out
    at once, the content with send(), interim responses are collected as they come."""

    def __init__(self, url: str, method: str, headers: dict[str, str]):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}",
                 *(f"{k}: {v}" for k, v in headers.items()), "Connection: close", "", ""]
        self.method = method
        self.sock = socket.create_connection((parts.hostname, parts.port),
                                             timeout=HTTP_TIMEOUT_S)
        self.sock.sendall("\r\n".join(lines).encode())
        self.buffer = b""
        self.interim: list[tuple[int, dict[str, str]]] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _head(self) -> tuple[int, dict[str, str]] | None:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers = {}
        for field in fields:
            name, _, value = field.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def wait_interim(self, timeout: float) -> tuple[int, dict[str, str]] | None:
        """The next interim response, or None if none comes within `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            head = self._head()
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(HTTP_TIMEOUT_S)
        assert head is not None and 100 <= head[0] < 200, f"expected an interim response: {head}"
        self.interim.append(head)
        return head

    def reply(self) -> Reply:
        while True:
            head = self._head()
            assert head is not None, "connection closed without a final response"
            if head[0] >= 200:
                break
            self.interim.append(head)
        status, headers = head
        while chunk := self.sock.recv(65536):  # Connection: close delimits the content
            self.buffer += chunk
        self.sock.close()
        body = b"" if self.method == "HEAD" or status in (204, 304) else self.buffer
        if headers.get("transfer-encoding") == "chunked":
            body = dechunk(body)
        return Reply(status, headers, body, self.interim)

    def close(self) -> None:
        self.sock.close()


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


def send(url: str, method: str, headers: dict[str, str], body: bytes = b"") -> Reply:
    """One request with exactly these headers (plus Host and Connection: close)."""
    exchange = Exchange(url, method, headers)
    exchange.send(body)
    return exchange.reply()


def append(url: str, version: int, offset: int, body: bytes, *, complete: bool) -> Reply:
    return send(url, "PATCH", {
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Complete": "?1" if complete else "?0",
        "Upload-Offset": str(offset),
        "Content-Type": PARTIAL_UPLOAD,
        "Content-Length": str(len(body)),
    }, body)


def retrieve_offset(url: str, version: int) -> Reply:
    return send(url, "HEAD", {"Upload-Draft-Interop-Version": str(version)})


def upload_url_of(stack, reply: Reply) -> str:
    location = reply.headers.get("location")
    assert location, f"no Location in {reply!r}"
    url = location if location.startswith("http") else f"{stack.tusd_url}{location}"
    assert url.startswith(f"{stack.tusd_url}/files/"), url
    return url


def assert_draft_reply(reply: Reply, version: int, status: int | tuple, complete: bool,
                       interim: tuple[int, ...] = ()) -> None:
    """The final response of a draft request; `interim`: the 1xx statuses expected before it
    (none by default: tusgate sends 104 only with -draft-104)."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert reply.status in statuses, reply
    assert tuple(s for s, _ in reply.interim) == interim, reply
    assert reply.headers.get("upload-complete") == ("?1" if complete else "?0"), reply
    assert reply.headers.get("upload-draft-interop-version") == str(version), reply
    assert "tus-resumable" not in reply.headers, f"answered as tus 1.0: {reply!r}"


def assert_nothing_published(stack, key: str) -> None:
    for visibility in AssetVisibility:
        assert not stack.published_path(visibility, key).exists(), \
            f"published before the upload was complete ({visibility.value})"
