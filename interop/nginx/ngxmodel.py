"""A small model of nginx 1.22 that the corpus needs to *build* requests.

To sign a URL the harness must know the exact bytes nginx puts into `$uri`
(the secure_link hash covers them), and to recognise the deliberate
differences it must know which file a request lands on.  This module
reproduces:

* the request-target part of `ngx_http_parse_request_line` (origin-form and
  absolute-form, control characters and spaces rejected) and
* `ngx_http_parse_complex_uri` with `merge_slashes on` (percent-decoding,
  `%25`/`%23`/`%3F` kept literal, slash merging, dot segments, `#` ends the
  path, `?` starts the arguments),

plus the secure_link token formula and the location/file classification of
the granite-assets operator template.

The model is *checked against nginx on every run* (a probe server that
answers `$uri`), so a mistake here shows up as a harness error instead of
silently wrong tokens.
"""

import base64
import hashlib
import os
import stat

SECRET = "test-secret-key"
FUTURE = "4102444800"          # 2100-01-01
PAST = "1000000000"            # 2001-09-09
MTIME = 1704164645             # every fixture file; "Tue, 02 Jan 2024 03:04:05 GMT"

# nginx's "usual" character bitmap (ngx_http_parse.c): bytes the URI parser
# copies without looking at them.
_USUAL = (
    0x00000000,  # 0x00-0x1f: controls
    0x7FFF37D6,  # 0x20-0x3f: not usual: space # % + . / ?
    0xFFFFFFFF,  # 0x40-0x5f
    0x7FFFFFFF,  # 0x60-0x7f: not usual: DEL
    0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,  # >= 0x80
)


def _usual(ch: int) -> bool:
    return bool(_USUAL[ch >> 5] & (1 << (ch & 0x1F)))


def token(expires, uri, secret=SECRET) -> str:
    """base64url (no padding) of MD5(expires-as-sent + $uri + " " + secret)."""
    if isinstance(expires, str):
        expires = expires.encode()
    if isinstance(uri, str):
        uri = uri.encode()
    digest = hashlib.md5(expires + uri + b" " + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def split_target(target: bytes):
    """Request-target -> (path, empty_path) as nginx sees it, or None (400).

    `path` starts at the first '/' of the path (query included); for an
    absolute-form target without a path, `empty_path` tells the complex parser
    to prepend '/'.
    """
    if any(b <= 0x20 or b == 0x7F for b in target):
        return None                          # raw space / control: 400
    if target.startswith(b"/"):
        return target, False
    # absolute-form: scheme "://" host [":" port] (path | "?" query | end)
    i = 0
    while i < len(target) and (chr(target[i]).isalnum() or target[i] in b"+-."):
        i += 1
    if i == 0 or not chr(target[0]).isalpha() or target[i:i + 3] != b"://":
        return None
    i += 3
    host_start = i
    while i < len(target) and (chr(target[i]).isalnum() or target[i] in b".-"):
        i += 1
    if i == host_start:
        return None                          # empty or unsupported host
    if target[i:i + 1] == b":":
        i += 1
        while i < len(target) and target[i] in b"0123456789":
            i += 1
    rest = target[i:]
    if rest == b"":
        return b"/", False
    if rest.startswith(b"/"):
        return rest, False
    if rest.startswith(b"?"):
        return rest, True
    return None


def parse_complex_uri(raw: bytes, empty_path: bool = False):
    """Port of ngx_http_parse_complex_uri (merge_slashes on).

    Returns (uri, args) with args None when there is no '?', or None for a
    request nginx rejects with 400.
    """
    buf = raw + b" "                 # nginx always has one byte after the URI
    end = len(raw)
    u = bytearray(b"/" if empty_path else b"")
    state = quoted_state = "usual"
    decoded = 0
    args_start = None

    def back_to_previous_segment():
        # "u -= 4; walk back to the previous '/'" -- fails above the root.
        i = len(u) - 4
        while True:
            if i < 0:
                return False
            if u[i] == 0x2F:
                del u[i + 1:]
                return True
            i -= 1

    p = 0
    ch = buf[p]
    p += 1
    while p <= end:
        c = chr(ch)
        if state == "usual":
            if _usual(ch):
                u.append(ch)
            elif c == "/":
                state = "slash"
                u.append(ch)
            elif c == "%":
                quoted_state, state = state, "quoted"
            elif c == "?":
                args_start = p
                break
            elif c == "#":
                return bytes(u), None
            else:                      # '.', '+'
                u.append(ch)
            ch = buf[p]
            p += 1
        elif state == "slash":
            if _usual(ch):
                state = "usual"
                u.append(ch)
            elif c == "/":
                pass                   # merge_slashes
            elif c == ".":
                state = "dot"
                u.append(ch)
            elif c == "%":
                quoted_state, state = state, "quoted"
            elif c == "?":
                args_start = p
                break
            elif c == "#":
                return bytes(u), None
            else:
                state = "usual"
                u.append(ch)
            ch = buf[p]
            p += 1
        elif state == "dot":
            if _usual(ch):
                state = "usual"
                u.append(ch)
            elif c == "/":
                state = "slash"
                del u[-1]
            elif c == ".":
                state = "dot_dot"
                u.append(ch)
            elif c == "%":
                quoted_state, state = state, "quoted"
            elif c == "?":
                del u[-1]
                args_start = p
                break
            elif c == "#":
                del u[-1]
                return bytes(u), None
            else:
                state = "usual"
                u.append(ch)
            ch = buf[p]
            p += 1
        elif state == "dot_dot":
            if _usual(ch):
                state = "usual"
                u.append(ch)
            elif c in "/?#":
                if not back_to_previous_segment():
                    return None
                if c == "?":
                    args_start = p
                    break
                if c == "#":
                    return bytes(u), None
                state = "slash"
            elif c == "%":
                quoted_state, state = state, "quoted"
            else:
                state = "usual"
                u.append(ch)
            ch = buf[p]
            p += 1
        elif state == "quoted":
            if c.isdigit():
                decoded = ch - 0x30
            elif "a" <= c.lower() <= "f":
                decoded = ord(c.lower()) - ord("a") + 10
            else:
                return None
            state = "quoted_second"
            ch = buf[p]
            p += 1
        else:  # quoted_second
            if c.isdigit():
                ch = (decoded << 4) + ch - 0x30
                if ch in (0x25, 0x23):          # "%25" -> '%', "%23" -> '#': literal
                    state = "usual"
                    u.append(ch)
                    ch = buf[p]
                    p += 1
                    continue
                if ch == 0:
                    return None                 # "%00"
                state = quoted_state            # re-process the decoded byte
                continue
            if "a" <= c.lower() <= "f":
                ch = (decoded << 4) + ord(c.lower()) - ord("a") + 10
                if ch == 0x3F:                  # "%3F" -> '?': literal
                    state = "usual"
                    u.append(ch)
                    ch = buf[p]
                    p += 1
                    continue
                state = quoted_state
                continue
            return None

    if args_start is None:
        if state in ("quoted", "quoted_second"):
            return None
        if state == "dot":
            del u[-1]
        elif state == "dot_dot" and not back_to_previous_segment():
            return None
        return bytes(u), None

    # arguments run to the end of the target, or to a '#'
    args = raw[args_start:]
    hash_at = args.find(b"#")
    if hash_at >= 0:
        args = args[:hash_at]
    return bytes(u), args


def normalise(target: bytes):
    """Request-target -> ($uri, $args) as nginx computes them, or None (400)."""
    split = split_target(target)
    if split is None:
        return None
    path, empty = split
    return parse_complex_uri(path, empty)


def uri_of(target) -> bytes:
    """$uri of a target the corpus expects nginx to accept (used for signing)."""
    if isinstance(target, str):
        target = target.encode()
    parsed = normalise(target)
    if parsed is None:
        raise ValueError(f"nginx would reject {target!r}; sign an explicit path")
    return parsed[0]


# --- $arg_NAME and $secure_link ----------------------------------------------

def arg(args, name: bytes):
    """ngx_http_arg: the first `name=` (case-insensitive) at the start of the
    arguments or right after '&'; the raw value up to the next '&'."""
    if not args:
        return None
    low, name = args.lower(), name.lower()
    i = low.find(name)
    while i >= 0:
        after = i + len(name)
        if (i == 0 or args[i - 1] == 0x26) and args[after:after + 1] == b"=":
            end = args.find(b"&", after + 1)
            return args[after + 1:] if end < 0 else args[after + 1:end]
        i = low.find(name, i + 1)
    return None


_B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_MAX_TIME_T = 2**63 - 1


def _decode_base64url(text: bytes):
    """ngx_decode_base64url: stop at the first '=', strict alphabet, unused bits ignored."""
    text = text.split(b"=", 1)[0]
    if any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        return None
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def _atotm(text: bytes):
    if not text or not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if value <= _MAX_TIME_T else None


def secure_link(args, uri: bytes, now: float, secret=SECRET) -> str:
    """$secure_link for `secure_link $arg_md5,$arg_expires` and
    `secure_link_md5 "$secure_link_expires$uri SECRET"`: "" (403), "0" (410) or "1"."""
    value = (arg(args, b"md5") or b"") + b"," + (arg(args, b"expires") or b"")
    tok, _, expires_text = value.partition(b",")
    expires = _atotm(expires_text)
    if expires is None or expires <= 0 or len(tok) > 24:
        return ""
    digest = _decode_base64url(tok)
    if digest is None or len(digest) != 16:
        return ""
    if digest != hashlib.md5(expires_text + uri + b" " + secret.encode()).digest():
        return ""
    return "0" if expires < int(now) else "1"


# --- the operator template's locations and the file a request lands on ------

PUBLIC_LOC = b"/assets/public/"
PRIVATE_LOC = b"/assets/private/"


def location(uri: bytes) -> str:
    """Which location block of the operator template handles $uri."""
    if uri == b"/health":
        return "health"
    if uri.startswith(PUBLIC_LOC):
        return "public"
    if uri.startswith(PRIVATE_LOC):
        return "private"
    if uri.startswith(b"/assets/"):
        return "catchall"
    return "root"


def classify(storage: str, uri: bytes):
    """(location, kind, stat) for $uri, where kind is one of

    file, dir, missing, notdir (a path below a regular file), symlink-escape
    (a symlink leads outside the prefix directory), fifo, device, unreadable
    (mode without read bits), loop (ELOOP), toolong (ENAMETOOLONG), or None
    outside the file locations.
    """
    loc = location(uri)
    if loc not in ("public", "private"):
        return loc, None, None
    prefix = PUBLIC_LOC if loc == "public" else PRIVATE_LOC
    root = os.path.join(os.fsencode(storage), loc.encode())
    path = root + b"/" + uri[len(prefix):]
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return loc, "missing", None
    except NotADirectoryError:
        return loc, "notdir", None
    except OSError as e:
        return loc, {40: "loop", 36: "toolong"}.get(e.errno, "error"), None
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + b"/"):
        return loc, "symlink-escape", st
    if stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISFIFO(st.st_mode):
        kind = "fifo"
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = "device"
    elif stat.S_ISREG(st.st_mode):
        kind = "unreadable" if st.st_mode & 0o444 == 0 else "file"
    else:
        kind = "other"
    return loc, kind, st


def etag(st) -> str:
    return '"%x-%x"' % (int(st.st_mtime), st.st_size)


if __name__ == "__main__":
    # sanity vectors from the nginx docs and granite-and-nginx.md
    assert token("2147483647", "/s/link127.0.0.1", "secret") == "_e4Nc3iduzkWRm01TBBNYw"
    assert token(FUTURE, "/assets/private/reports/q1.pdf") == "mCKvpV2I4bco6SPpZvlc-w"
    for raw, want in [
        (b"/a//b/./c/../d", b"/a/b/d"), (b"/a/%2e%2e/b", b"/b"), (b"/%25/%23/%3F", b"/%/#/?"),
        (b"/a%2Fb", b"/a/b"), (b"/a#b?c", b"/a"), (b"/..", None), (b"/a%00", None),
        (b"/a%zz", None), (b"/a%4", None), (b"/a/..", b"/"), (b"/a/.", b"/a/"),
        (b"http://h:1", b"/"), (b"http://h?x", b"/"),
    ]:
        got = normalise(raw)
        assert (got and got[0]) == want or (got is None and want is None), (raw, got, want)
    print("ngxmodel: ok")
