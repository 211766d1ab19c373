"""The storage tree both servers serve: `storage/public/…` and `storage/private/…`.

It holds every file of the recorded vectors' `fixture` section (same bytes,
same mtime, so recorded ETags and Last-Modified values reproduce) plus the
extra files the corpus needs.  Regular files get mtime MTIME.
"""

import hashlib
import os
import stat

from ngxmodel import MTIME

MIB = 1024 * 1024

# Extra regular files: path below storage/ -> content (bytes, or a callable).
EXTRA_FILES = {
    # extensions for Content-Type (the vectors' fixture has most of them already)
    "public/types/a.png": b"x",
    "public/types/a.gif": b"x",
    "public/types/a.css": b"x",
    "public/types/a.js": b"x",
    "public/types/a.xml": b"x",
    "public/types/a.zip": b"x",
    "public/types/a.mp3": b"x",
    "public/types/a.woff2": b"x",
    "public/types/a.ico": b"x",
    "public/types/a.htm": b"x",
    "public/types/a.avif": b"x",
    "public/types/a.TXT": b"x",
    "public/types/a.Pdf": b"x",
    "public/types/a.": b"x",              # trailing dot: empty extension
    "public/types/a.b.c": b"x",
    "public/types/.txt": b"x",            # leading dot only: no extension
    "public/types/.hidden.pdf": b"x",     # dotfile with an extension
    "public/types/v1.2/readme": b"x",     # dot in a directory, none in the name
    "public/types/a.json.bak": b"x",
    # names with characters that HTTP stacks treat differently
    "public/names/space name.txt": b"space\n",
    "public/names/plus+name.txt": b"plus\n",
    "public/names/semi;colon.txt": b"semicolon\n",
    "public/names/comma,name.txt": b"comma\n",
    "public/names/eq=amp&.txt": b"eq amp\n",
    "public/names/at@colon:.txt": b"at colon\n",
    "public/names/paren(1)!$'*.txt": b"sub-delims\n",
    "public/names/tilde~_-.txt": b"unreserved\n",
    "public/names/bracket[1].txt": b"brackets\n",
    "public/names/brace{1}.txt": b"braces\n",
    "public/names/pipe|caret^.txt": b"pipe caret\n",
    "public/names/quote\"lt<gt>.txt": b"quote lt gt\n",
    "public/names/back`tick.txt": b"backtick\n",
    "public/names/back\\slash.txt": b"backslash\n",
    "public/names/..dots": b"two leading dots\n",
    "public/names/...": b"three dots\n",
    "public/names/100%.txt": b"percent\n",
    "public/names/caf\u00e9.txt": b"nfc\n",               # NFC e-acute
    "public/names/cafe\u0301.txt": b"nfd\n",              # NFD e + combining acute
    "public/names/\u65e5\u672c.txt": b"cjk\n",
    "public/names/emoji-\U0001F600.txt": b"emoji\n",
    "public/names/" + "L" * 250 + ".txt": b"long name\n",   # 254 bytes: the limit is 255
    "public/HELLO.TXT": b"upper case twin of hello.txt\n",
    # nesting
    "public/nested/a/b/c/deep.txt": b"deep\n",
    "public/dir/sub/leaf.txt": b"leaf\n",
    "public/lockeddir/inside.txt": b"inside a mode-000 directory\n",
    # private extras
    "private/report.pdf": b"%PDF-1.7 private report\n",
    "private/types/a.json": b"{\"private\": true}\n",
    "private/types/a.svg": b"<svg/>\n",
    "private/names/caf\u00e9.txt": b"private nfc\n",
    "private/names/cafe\u0301.txt": b"private nfd\n",
    "private/names/plus+name.txt": b"private plus\n",
    "private/names/semi;colon.txt": b"private semicolon\n",
    "private/names/back\\slash.txt": b"private backslash\n",
    "private/noperm.txt": b"private unreadable\n",
    "private/big5.bin": lambda: pseudo_random(5 * MIB, b"private"),
    # sizes
    "public/big5.bin": lambda: pseudo_random(5 * MIB, b"public"),
    "public/one.bin": b"\x00",
}

# Files whose name is not valid UTF-8 (path below storage/ as bytes).
EXTRA_BYTE_NAMES = {
    b"private/names/\xff.bin": b"latin-1 byte name\n",
    b"public/names/\xe9t\xe9.txt": b"latin-1 name\n",
}

MODE_000 = ["public/noperm.txt", "private/noperm.txt"]
MODE_000_DIRS = ["public/lockeddir"]

# Symlinks: path below storage/ -> link target (relative unless absolute).
SYMLINKS = {
    "public/link-to-private.txt": "../private/secret.txt",     # escapes public/ (vectors)
    "public/link-inside.txt": "hello.txt",                      # stays inside public/
    "public/link-dir-inside": "dir",                            # directory inside public/
    "public/link-dir-escape": "../private/dir",                 # directory outside public/
    "public/link-outside-storage.txt": "{tmp}/outside.txt",     # absolute, outside storage
    "public/link-dangling.txt": "nope.txt",
    "public/link-loop": "link-loop",
    "private/link-to-public.txt": "../public/hello.txt",       # escapes private/
    "private/link-inside.txt": "secret.txt",
}


def pseudo_random(size: int, seed: bytes) -> bytes:
    """Deterministic bytes without short periods, so an off-by-N range shows."""
    out = bytearray()
    block = seed
    counter = 0
    while len(out) < size:
        block = hashlib.sha256(block + counter.to_bytes(8, "big")).digest()
        out += block
        counter += 1
    return bytes(out[:size])


def big_bin() -> bytes:
    """The vectors' 50 MiB file: bytes 0..250 repeated, truncated."""
    period = bytes(range(251))
    size = 52428800
    return (period * (size // 251 + 1))[:size]


def build(tmp: str, vectors: dict) -> dict:
    """Create tmp/storage (plus tmp/outside.txt); return notes about the tree."""
    storage = os.path.join(tmp, "storage")
    notes = []
    files = {}
    for rel, spec in vectors["fixture"]["files"].items():
        if "content_utf8" in spec:
            files[rel.encode()] = spec["content_utf8"].encode()
        elif rel == "public/big.bin":
            files[rel.encode()] = big_bin
    for rel, content in EXTRA_FILES.items():
        files[rel.encode()] = content
    files.update(EXTRA_BYTE_NAMES)

    for rel, content in files.items():
        path = os.path.join(os.fsencode(storage), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content() if callable(content) else content
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (MTIME, MTIME))

    # verify the recorded fixture reproduced byte for byte
    for rel, spec in vectors["fixture"]["files"].items():
        if "sha256" in spec:
            with open(os.path.join(storage, rel), "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            if got != spec["sha256"]:
                raise RuntimeError(f"fixture {rel}: sha256 {got} != recorded {spec['sha256']}")

    with open(os.path.join(tmp, "outside.txt"), "wb") as f:
        f.write(b"outside the storage root\n")
    os.utime(os.path.join(tmp, "outside.txt"), (MTIME, MTIME))

    for rel, target in SYMLINKS.items():
        os.symlink(target.format(tmp=tmp), os.path.join(storage, rel))

    os.mkfifo(os.path.join(storage, "public/fifo"))
    os.mkfifo(os.path.join(storage, "private/fifo"))
    try:
        os.mknod(os.path.join(storage, "public/devnull"),
                 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as e:
        notes.append(f"no device node in the fixture ({e.strerror}); device cases hit a missing file")

    for rel in MODE_000:
        os.chmod(os.path.join(storage, rel), 0)
    for rel in MODE_000_DIRS:
        os.chmod(os.path.join(storage, rel), 0)

    os.makedirs(os.path.join(storage, "public/emptydir"), exist_ok=True)
    return {"storage": storage, "notes": notes}
