"""A deliberately dumb HTTP/1.1 client over raw sockets.

The corpus needs to put bytes on the wire that no HTTP library would send:
raw spaces, bad `%` escapes, `..`, absolute-form targets, raw non-UTF-8 bytes.
So a request is built by hand, sent with `Connection: close`, and the answer
is read with its own framing (Content-Length / chunked / until EOF), every
socket operation bounded by a timeout.
"""

import hashlib
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)   # [(name, value)] in wire order
    body: bytes | None = b""                       # None: only the hash is known
    sha256: str | None = None                      # set when body is None

    def all(self, name: str) -> list:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def get(self, name: str):
        values = self.all(name)
        return values[0] if values else None

    def body_sha256(self) -> str:
        if self.body is None:
            return self.sha256
        return hashlib.sha256(self.body).hexdigest()

    def replace_headers(self, name: str, values: list) -> "Response":
        """Copy with every `name` header replaced by `values` (appended last)."""
        kept = [(n, v) for n, v in self.headers if n.lower() != name.lower()]
        return Response(self.status, kept + [(name, v) for v in values], self.body, self.sha256)


class HTTPError(Exception):
    """The server sent something that is not an HTTP/1.x response, or nothing."""


def build_request(method: str, target: bytes, headers, body: bytes = b"",
                  version: str = "HTTP/1.1", host: str | None = "localhost") -> bytes:
    lines = [method.encode() + b" " + target + b" " + version.encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    for name, value in headers:
        if isinstance(value, str):
            value = value.encode("latin-1")
        lines.append(name.encode() + b": " + value)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, request: bytes, head: bool, timeout: float = 15.0) -> Response:
    """Send `request` to 127.0.0.1:port and read one response."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (e.g. 400) before reading everything
        reader = _Reader(s, deadline)
        head_bytes = reader.until(b"\r\n\r\n")
        status, headers = _parse_head(head_bytes)
        body = _read_body(reader, status, headers, head)
    return Response(status, headers, body)


class _Reader:
    def __init__(self, sock, deadline):
        self.sock, self.deadline, self.buf = sock, deadline, bytearray()

    def _fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("response not complete in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def until(self, marker: bytes) -> bytes:
        while (i := self.buf.find(marker)) < 0:
            if not self._fill():
                raise HTTPError(f"connection closed before {marker!r} "
                                f"(got {len(self.buf)} bytes: {bytes(self.buf[:80])!r})")
        return self._take(i + len(marker))

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise HTTPError(f"body truncated: {len(self.buf)} of {n} bytes")
        return self._take(n)

    def rest(self) -> bytes:
        while self._fill():
            pass
        return self._take(len(self.buf))


def _parse_head(head: bytes):
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HTTPError(f"bad status line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise HTTPError(f"bad header line {line!r}")
        headers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
    return int(parts[1]), headers


def _read_body(reader: _Reader, status: int, headers, head: bool) -> bytes:
    if head or status in (204, 304) or 100 <= status < 200:
        return b""
    te = [v.lower() for n, v in headers if n.lower() == "transfer-encoding"]
    if te and "chunked" in te[-1]:
        body = b""
        while True:
            size_line = reader.until(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                reader.until(b"\r\n")       # no trailers expected
                return body
            body += reader.exactly(size)
            reader.exactly(2)
    lengths = [v for n, v in headers if n.lower() == "content-length"]
    if lengths:
        return reader.exactly(int(lengths[0]))
    return reader.rest()


# --- multipart/byteranges ----------------------------------------------------

def boundary_of(content_type: str | None):
    if not content_type or not content_type.lower().startswith("multipart/byteranges"):
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            return value.strip('"')
    return None


def multipart_parts(body: bytes, boundary: str):
    """[(content-type, content-range, sha256 of the part)] or raise ValueError.

    Preamble and epilogue are ignored: only the parts carry meaning, and the
    boundary itself is a per-process counter in nginx.
    """
    delimiter = b"--" + boundary.encode()
    pieces = body.split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise ValueError("no closing delimiter")
    parts = []
    for piece in pieces[1:-1]:
        if not piece.startswith(b"\r\n") or not piece.endswith(b"\r\n"):
            raise ValueError("part not framed by CRLF")
        head, sep, data = piece[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without a header block")
        fields = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        parts.append((fields.get("content-type"), fields.get("content-range"),
                      hashlib.sha256(data).hexdigest()))
    return parts
