"""The request corpus: tables of cases, grouped by topic.

Each row is `(id, target[, options])`.  `target` is the raw request-target
(str is sent as UTF-8, bytes as they are).  Options: method, headers, body,
version, host (None: no Host header) and `doc`, the status
granite-and-nginx.md records for nginx; a live nginx that disagrees with
`doc` is reported as a note (the live nginx stays the reference).

`signed(path, ...)` appends a secure_link query whose token covers the $uri
nginx derives from `path` unless `over=` names what to sign instead, so every
"valid" row really is valid and every tampered row differs in exactly one way.
"""

import base64
import hashlib
import time
import unicodedata
from dataclasses import dataclass

from ngxmodel import FUTURE, PAST, SECRET, token, uri_of


@dataclass
class Case:
    id: str
    group: str
    target: bytes
    method: str = "GET"
    headers: tuple = ()
    body: bytes = b""
    version: str = "HTTP/1.1"
    host: str | None = "localhost"
    doc: int | None = None


def b(x) -> bytes:
    return x.encode() if isinstance(x, str) else x


def signed(path, *, over=None, expires=FUTURE, md5=None,
           query="md5={md5}&expires={expires}") -> bytes:
    """`path` + "?" + a secure_link query (token over `over`, default nginx's $uri of `path`)."""
    path = b(path)
    if md5 is None:
        md5 = token(expires, b(over) if over is not None else uri_of(path))
    return path + b"?" + query.format(md5=md5, expires=expires).encode()


def raw_token(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(data).digest()).rstrip(b"=").decode()


def token_containing(ch: str, path: str):
    """(expires, token) for `path` where the token contains `ch` (searching expiries)."""
    for i in range(10000):
        expires = str(int(FUTURE) + i)
        t = token(expires, path)
        if ch in t[:21]:
            return expires, t
    raise AssertionError(f"no token with {ch!r}")


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def same_digest_last_chars(t: str) -> list:
    """Last characters that decode to the same 16 bytes (nginx ignores the 4 unused bits)."""
    group = B64.index(t[21]) >> 4
    return [c for c in B64[group * 16:group * 16 + 16] if c != t[21]]


def other_digest_char(c: str) -> str:
    return B64[(B64.index(c) + 16) % 64]


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


# Fixture paths used throughout
Q1 = "/assets/private/reports/q1.pdf"
SECRET_TXT = "/assets/private/secret.txt"
RANGE = "/assets/private/range.txt"
HELLO = "/assets/public/hello.txt"
T_Q1 = token(FUTURE, Q1)                      # mCKvpV2I4bco6SPpZvlc-w
ETAG_HELLO = '"65937d25-d"'
ETAG_Q1 = '"65937d25-1b"'
ETAG_RANGE = '"65937d25-14"'
LM = "Tue, 02 Jan 2024 03:04:05 GMT"
LM_RFC850 = "Tuesday, 02-Jan-24 03:04:05 GMT"
LM_ASCTIME = "Tue Jan  2 03:04:05 2024"
LATER = "Wed, 03 Jan 2024 03:04:05 GMT"
LATER_1S = "Tue, 02 Jan 2024 03:04:06 GMT"
EARLIER = "Mon, 01 Jan 2024 03:04:05 GMT"
EARLIER_1S = "Tue, 02 Jan 2024 03:04:04 GMT"


def q1(query: str) -> bytes:
    return (Q1 + "?" + query).encode()


# --- secure_link: tokens and expiry -------------------------------------------

def secure_link_rows():
    now = int(time.time())
    t_past = token(PAST, Q1)
    return [
        ("valid", signed(Q1), dict(doc=200)),
        ("valid_head", signed(Q1), dict(method="HEAD", doc=200)),
        ("expired", signed(Q1, expires=PAST), dict(doc=410)),
        ("expired_head", signed(Q1, expires=PAST), dict(method="HEAD", doc=410)),
        ("expired_and_tampered", signed(Q1, expires=PAST, md5="A" + t_past[1:]), dict(doc=403)),
        ("tampered_first_char", signed(Q1, md5="A" + T_Q1[1:]), dict(doc=403)),
        ("tampered_last_char_bits", signed(Q1, md5=T_Q1[:21] + other_digest_char(T_Q1[21]))),
        ("tampered_middle_char", signed(Q1, md5=T_Q1[:10] + other_digest_char(T_Q1[10]) + T_Q1[11:])),
        ("token_for_other_file", signed(SECRET_TXT, md5=T_Q1), dict(doc=403)),
        ("token_without_base_path", signed(Q1, over="/private/reports/q1.pdf"), dict(doc=403)),
        ("token_over_key_only", signed(Q1, over="reports/q1.pdf")),
        ("token_over_path_and_query", signed(Q1, over=Q1 + "?x=1")),
        ("token_with_host", signed(Q1, over="localhost" + Q1)),
        ("token_with_trailing_slash", signed(Q1, over=Q1 + "/")),
        ("token_wrong_secret", signed(Q1, md5=token(FUTURE, Q1, "wrong-secret"))),
        ("token_two_spaces", signed(Q1, over=Q1 + " ")),
        ("token_expires_after_path",
         signed(Q1, md5=raw_token((Q1 + FUTURE + " " + SECRET).encode()))),
        ("token_hex_digest",
         signed(Q1, md5=hashlib.md5((FUTURE + Q1 + " " + SECRET).encode()).hexdigest())),
        ("token_standard_b64_padded",
         signed(Q1, md5=base64.b64encode(hashlib.md5((FUTURE + Q1 + " " + SECRET).encode())
                                         .digest()).decode())),
        ("no_query", Q1, dict(doc=403)),
        ("empty_query", Q1 + "?"),
        ("missing_md5", q1("expires=" + FUTURE), dict(doc=403)),
        ("missing_expires", q1("md5=" + T_Q1), dict(doc=403)),
        ("missing_expires_token_without_expiry", q1("md5=" + token("", Q1))),
        ("empty_md5", q1("md5=&expires=" + FUTURE), dict(doc=403)),
        ("empty_expires", signed(Q1, expires="")),
        ("empty_both", q1("md5=&expires=")),
        ("near_future_expiry", signed(Q1, expires=str(now + 600))),
        ("just_expired", signed(Q1, expires=str(now - 5))),
        ("comma_in_md5_smuggles_expiry", q1("md5=" + T_Q1 + "," + FUTURE)),
        ("valid_secret_txt", signed(SECRET_TXT)),
        ("valid_range_txt", signed(RANGE)),
        ("valid_empty_private", signed("/assets/private/empty.txt")),
        ("valid_missing_file", signed("/assets/private/nope.txt"), dict(doc=404)),
        ("no_token_missing_file", "/assets/private/nope.txt"),
        ("expired_missing_file", signed("/assets/private/nope.txt", expires=PAST)),
    ]


def expires_syntax_rows():
    # The token always covers the `expires` text exactly as sent.
    rows = []
    for name, text, doc in [
        ("nonnumeric", "abc", 403), ("negative", "-1", 403), ("zero", "0", 403),
        ("double_zero", "00", None), ("one", "1", 410), ("plus_sign", "+" + FUTURE, 403),
        ("leading_zero", "0" + FUTURE, 200), ("many_leading_zeros", "000" + FUTURE, None),
        ("y2038", "2147483647", 200), ("y2038_plus_1", "2147483648", None),
        ("uint32_overflow", "4294967296", None), ("int64_max", "9223372036854775807", None),
        ("int64_max_leading_zeros", "0009223372036854775807", None),
        ("int64_overflow", "9223372036854775808", 403), ("twenty_nines", "9" * 20, None),
        ("decimal_point", FUTURE + ".0", None), ("trailing_letters", FUTURE + "abc", None),
        ("hex", "0x100000000", None), ("exponent", "1e10", None),
        ("pct_encoded_digit", "%34102444800", 403), ("pct_encoded_space", "%20" + FUTURE, None),
        ("plus_suffix", FUTURE + "+", None), ("minus_zero", "-0", None),
        ("arabic_indic_digit", "\u0664" + FUTURE, None), ("fullwidth_digit", "\uff14" + FUTURE, None),
    ]:
        rows.append((f"expires_{name}", signed(Q1, expires=text), dict(doc=doc)))
    rows += [
        ("expires_leading_zero_token_over_canonical",
         signed(Q1, expires="0" + FUTURE, md5=T_Q1), dict(doc=403)),
        ("expires_past_leading_zero", signed(Q1, expires="0" + PAST)),
    ]
    return rows


def md5_syntax_rows():
    exp_u, t_u = token_containing("_", Q1)        # a token using '_' for the '/' test
    variants = same_digest_last_chars(T_Q1)
    return [
        ("md5_padded", signed(Q1, md5=T_Q1 + "=="), dict(doc=200)),
        ("md5_one_pad", signed(Q1, md5=T_Q1 + "=")),
        ("md5_pad_then_garbage", signed(Q1, md5=T_Q1 + "=x"), dict(doc=200)),
        ("md5_pad_then_garbage_25_chars", signed(Q1, md5=T_Q1 + "=xy")),
        ("md5_three_pads_25_chars", signed(Q1, md5=T_Q1 + "===")),
        ("md5_padded_pct_encoded", signed(Q1, md5=T_Q1 + "%3D%3D"), dict(doc=403)),
        ("md5_pad_first", signed(Q1, md5="=" + T_Q1)),
        ("md5_standard_alphabet_plus", signed(Q1, md5=T_Q1.replace("-", "+")), dict(doc=403)),
        ("md5_standard_alphabet_slash", signed(Q1, expires=exp_u, md5=t_u.replace("_", "/"))),
        ("md5_underscore_token_valid", signed(Q1, expires=exp_u, md5=t_u)),
        ("md5_pct_encoded_dash", signed(Q1, md5=T_Q1.replace("-", "%2D")), dict(doc=403)),
        ("md5_21_chars", signed(Q1, md5=T_Q1[:21]), dict(doc=403)),
        ("md5_23_chars", signed(Q1, md5=T_Q1 + "A"), dict(doc=403)),
        ("md5_24_A", signed(Q1, md5="A" * 24), dict(doc=403)),
        ("md5_22_A", signed(Q1, md5="A" * 22)),
        ("md5_swapped_case", signed(Q1, md5=T_Q1.swapcase())),
        ("md5_trailing_space_encoded", signed(Q1, md5=T_Q1 + "%20")),
        ("md5_trailing_plus", signed(Q1, md5=T_Q1 + "+")),
        ("md5_with_dot", signed(Q1, md5=T_Q1[:21] + ".")),
    ] + [
        (f"md5_noncanonical_last_char_{c if c.isalnum() else hex(ord(c))}",
         signed(Q1, md5=T_Q1[:21] + c), dict(doc=200 if c == "x" else None))
        for c in variants[:4] + variants[-2:]
    ]


def query_rows():
    good = f"md5={T_Q1}&expires={FUTURE}"
    return [
        ("param_names_uppercase", q1(f"MD5={T_Q1}&EXPIRES={FUTURE}"), dict(doc=200)),
        ("param_names_mixed_case", q1(f"Md5={T_Q1}&eXpires={FUTURE}")),
        ("params_reversed", q1(f"expires={FUTURE}&md5={T_Q1}"), dict(doc=200)),
        ("duplicate_md5_bad_first", q1(f"md5={'A' * 22}&{good}"), dict(doc=403)),
        ("duplicate_md5_good_first", q1(f"{good}&md5={'A' * 22}"), dict(doc=200)),
        ("duplicate_expires_good_first", q1(f"{good}&expires=1")),
        ("duplicate_expires_bad_first", q1(f"expires=1&{good}")),
        ("extra_params_after", q1(f"{good}&download=1&x=y"), dict(doc=200)),
        ("extra_params_before", q1(f"a=1&b&{good}")),
        ("semicolon_separator", q1(f"md5={T_Q1};expires={FUTURE}"), dict(doc=403)),
        ("double_ampersand", q1(f"md5={T_Q1}&&expires={FUTURE}")),
        ("leading_ampersand", q1(f"&{good}")),
        ("trailing_ampersand", q1(f"{good}&")),
        ("name_as_suffix_of_other", q1(f"xmd5={'A' * 22}&{good}")),
        ("name_as_prefix_of_other", q1(f"md5x={'A' * 22}&{good}")),
        ("name_pct_encoded", q1(f"md%35={T_Q1}&expires={FUTURE}")),
        ("equals_pct_encoded", q1(f"md5%3D{T_Q1}&expires={FUTURE}")),
        ("name_without_value_then_good", q1(f"md5&{good}")),
        ("empty_name_param", q1(f"=x&{good}")),
        ("fragment_after_query", q1(f"{good}#frag")),
        ("fragment_inside_md5", q1(f"md5={T_Q1}#&expires={FUTURE}")),
        ("second_question_mark_in_expires", q1(f"{good}?x=1")),
        ("second_question_mark_first", q1(f"?{good}")),
        ("bad_escape_in_other_param", q1(f"{good}&x=%zz")),
        ("nul_escape_in_other_param", q1(f"{good}&x=%00")),
        ("plus_and_space_in_other_param", q1(f"{good}&x=a+b%20c")),
        ("raw_utf8_in_other_param", q1(f"{good}&x=caf\u00e9")),
        ("path_parameter_semicolon", signed(Q1 + ";v=1")),
        ("public_ignores_bad_token", HELLO + "?md5=AAAA&expires=1"),
        ("public_ignores_bad_escape_in_query", HELLO + "?x=%zz"),
    ]


# --- request paths: encoding, unicode, dots, traversal -----------------------

def encoding_rows():
    return [
        ("encoded_slash", signed("/assets/private/reports%2Fq1.pdf"), dict(doc=200)),
        ("encoded_slash_lowercase", signed("/assets/private/reports%2fq1.pdf"), dict(doc=200)),
        ("encoded_letters", signed("/assets/private/%72%65%70orts/q1.pdf")),
        ("encoded_prefix_segment", signed("/assets/%70rivate/reports/q1.pdf")),
        ("encoded_prefix_slash", signed("/assets/private%2Freports/q1.pdf")),
        ("encoded_public_prefix", "/%61ssets/public/hello.txt"),
        ("encoded_extension_dot", "/assets/public/types/a%2Epdf"),
        ("double_encoded_slash", signed("/assets/private/reports%252Fq1.pdf")),
        ("pct25_decoded", signed("/assets/private/100%25.txt"), dict(doc=200)),
        ("pct25_as_granite_emits", signed("/assets/private/100%25.txt",
                                          over="/assets/private/100%25.txt"), dict(doc=403)),
        ("pct25_double_encoded", signed("/assets/private/100%2525.txt"), dict(doc=200)),
        ("percent_literal_raw", signed("/assets/private/100%.txt",
                                       over="/assets/private/100%.txt"), dict(doc=400)),
        ("question_encoded", signed("/assets/private/what%3F.txt"), dict(doc=200)),
        ("question_encoded_lowercase", signed("/assets/private/what%3f.txt")),
        ("question_as_granite_emits", signed("/assets/private/what?.txt",
                                             over="/assets/private/what?.txt"), dict(doc=403)),
        ("hash_encoded", signed("/assets/private/a%23b.txt"), dict(doc=200)),
        ("hash_raw_as_granite_emits", signed("/assets/private/a#b.txt",
                                             over="/assets/private/a#b.txt")),
        ("hash_raw_public", "/assets/public/hello.txt#frag"),
        ("encoded_nul", signed("/assets/private/secret.txt%00.pdf",
                               over="/assets/private/secret.txt"), dict(doc=400)),
        ("invalid_escape", "/assets/private/a%zz.txt", dict(doc=400)),
        ("invalid_escape_public", "/assets/public/a%zz.txt"),
        ("truncated_escape", "/assets/private/a%4", dict(doc=400)),
        ("lone_percent_at_end", "/assets/public/hello.txt%"),
        ("double_percent", "/assets/public/%%41"),
        ("escape_non_hex_first", "/assets/public/%G0.txt"),
        ("escape_non_hex_second", "/assets/public/%0G.txt"),
        ("escape_cut_by_slash", "/assets/public/%2/x"),
        ("escape_u_syntax", "/assets/public/%u0041.txt"),
        ("pct25_at_end", signed("/assets/private/%25")),
        ("encoded_plain_letter", signed("/assets/private/secret.%74xt")),
        ("backslash_raw", "/assets/public/names/back\\slash.txt"),
        ("backslash_encoded", "/assets/public/names/back%5Cslash.txt"),
        ("backslash_private", signed("/assets/private/names/back%5cslash.txt")),
        ("backslash_traversal", "/assets/public/..\\private\\secret.txt"),
        ("backslash_encoded_traversal", "/assets/public/names/..%5c..%5cprivate%5csecret.txt"),
        ("tab_raw", "/assets/public/he\tllo.txt", dict(doc=400)),
        ("tab_encoded", signed("/assets/private/my%09file.txt")),
        ("del_raw", b"/assets/public/hello\x7f.txt"),
        ("control_raw", b"/assets/public/hello\x01.txt"),
        ("cr_encoded", "/assets/public/hello%0D.txt"),
        ("lf_encoded", "/assets/public/hello%0A.txt"),
    ]


def unicode_space_plus_rows():
    cafe = "/assets/private/caf\u00e9/\u00fcn\u00ef.txt"
    cafe_enc = "/assets/private/caf%C3%A9/%C3%BCn%C3%AF.txt"
    return [
        ("unicode_pct_encoded", signed(cafe_enc), dict(doc=200)),
        ("unicode_pct_encoded_lower_hex", signed(cafe_enc.lower())),
        ("unicode_raw_utf8", signed(cafe), dict(doc=200)),
        ("unicode_token_over_nfd", signed(cafe_enc, over=nfd(cafe)), dict(doc=403)),
        ("unicode_nfd_request_nfc_file", signed(nfd(cafe)), dict(doc=404)),
        ("unicode_nfc_name_public", "/assets/public/names/caf\u00e9.txt"),
        ("unicode_nfd_name_public", "/assets/public/names/" + nfd("caf\u00e9") + ".txt"),
        ("unicode_nfc_name_private", signed("/assets/private/names/caf%C3%A9.txt")),
        ("unicode_nfd_name_private", signed("/assets/private/names/cafe%CC%81.txt")),
        ("unicode_nfd_file_nfc_token", signed("/assets/private/names/cafe%CC%81.txt",
                                              over="/assets/private/names/caf\u00e9.txt")),
        ("unicode_cjk_raw", "/assets/public/names/\u65e5\u672c.txt"),
        ("unicode_cjk_encoded", "/assets/public/names/%E6%97%A5%E6%9C%AC.txt"),
        ("unicode_emoji_encoded", "/assets/public/names/emoji-%F0%9F%98%80.txt"),
        ("non_utf8_token_over_raw_byte", signed("/assets/private/%FF.bin"), dict(doc=404)),
        ("non_utf8_existing_file", signed("/assets/private/names/%FF.bin")),
        ("non_utf8_raw_byte_in_request", signed(b"/assets/private/names/\xff.bin")),
        ("non_utf8_token_over_replacement_char", signed("/assets/private/%FF.bin",
                                                        over="/assets/private/\ufffd.bin"),
         dict(doc=403)),
        ("non_utf8_latin1_public", "/assets/public/names/%E9t%E9.txt"),
        ("overlong_utf8_slash", "/assets/public/%C0%AFhello.txt"),
        ("space_encoded", signed("/assets/private/my%20file.txt"), dict(doc=200)),
        ("space_token_over_encoded", signed("/assets/private/my%20file.txt",
                                            over="/assets/private/my%20file.txt"), dict(doc=403)),
        ("space_raw_in_request_line", signed("/assets/private/my file.txt",
                                             over="/assets/private/my file.txt"), dict(doc=400)),
        ("space_as_plus", signed("/assets/private/my+file.txt")),
        ("space_as_plus_token_over_space", signed("/assets/private/my+file.txt",
                                                  over="/assets/private/my file.txt")),
        ("space_public_encoded", "/assets/public/names/space%20name.txt"),
        ("plus_raw", signed("/assets/private/a+b.txt"), dict(doc=200)),
        ("plus_pct_encoded", signed("/assets/private/a%2Bb.txt"), dict(doc=200)),
        ("plus_pct_encoded_lower", signed("/assets/private/a%2bb.txt")),
        ("plus_token_over_space", signed("/assets/private/a+b.txt", over="/assets/private/a b.txt")),
        ("plus_public", "/assets/public/names/plus+name.txt"),
        ("plus_private_names", signed("/assets/private/names/plus+name.txt")),
    ]


def special_character_rows():
    rows = []
    for name, raw, encoded in [
        ("semicolon", "semi;colon.txt", "semi%3Bcolon.txt"),
        ("comma", "comma,name.txt", "comma%2Cname.txt"),
        ("eq_amp", "eq=amp&.txt", "eq%3Damp%26.txt"),
        ("at_colon", "at@colon:.txt", "at%40colon%3A.txt"),
        ("sub_delims", "paren(1)!$'*.txt", "paren%281%29%21%24%27%2A.txt"),
        ("unreserved", "tilde~_-.txt", "%74ilde%7E%5F%2D.txt"),
        ("brackets", "bracket[1].txt", "bracket%5B1%5D.txt"),
        ("braces", "brace{1}.txt", "brace%7B1%7D.txt"),
        ("pipe_caret", "pipe|caret^.txt", "pipe%7Ccaret%5E.txt"),
        ("quote_lt_gt", "quote\"lt<gt>.txt", "quote%22lt%3Cgt%3E.txt"),
        ("backtick", "back`tick.txt", "back%60tick.txt"),
        ("two_leading_dots", "..dots", "%2E%2Edots"),
        ("three_dots", "...", "%2E.%2E"),
    ]:
        rows.append((f"chars_{name}_raw", "/assets/public/names/" + raw))
        rows.append((f"chars_{name}_encoded", "/assets/public/names/" + encoded))
    rows += [
        ("chars_semicolon_private", signed("/assets/private/names/semi;colon.txt")),
        ("chars_percent_public_raw", "/assets/public/names/100%.txt"),
        ("chars_percent_public_encoded", "/assets/public/names/100%25.txt"),
        ("long_name_254_bytes", "/assets/public/names/" + "L" * 250 + ".txt"),
        ("long_name_300_bytes", "/assets/public/names/" + "L" * 296 + ".txt"),
        ("long_path_4000_bytes", "/assets/public/" + "a/" * 2000 + "x.txt"),
        ("case_upper_twin", "/assets/public/HELLO.TXT"),
        ("case_mixed_missing", "/assets/public/Hello.txt"),
    ]
    return rows


def slash_dot_rows():
    return [
        ("double_slash_token_merged", signed("/assets/private//reports//q1.pdf"), dict(doc=200)),
        ("double_slash_token_literal", signed("/assets/private//reports//q1.pdf",
                                              over="/assets/private//reports//q1.pdf"), dict(doc=403)),
        ("leading_double_slash", "//assets/public/hello.txt"),
        ("double_slash_in_prefix", "/assets//public/hello.txt"),
        ("double_slash_private_prefix", signed("/assets//private/secret.txt")),
        ("many_slashes", "/assets/public////dir///inner.txt"),
        ("encoded_double_slash", "/assets/public/%2F%2Fhello.txt"),
        ("trailing_slash_on_file", "/assets/public/hello.txt/"),
        ("trailing_double_slash_on_file", "/assets/public/hello.txt//"),
        ("trailing_slash_on_private_file", signed(SECRET_TXT + "/")),
        ("dot_segment", "/assets/public/./hello.txt"),
        ("dot_segment_token_normalised", signed("/assets/private/reports/./q1.pdf"), dict(doc=200)),
        ("dot_segment_token_literal", signed("/assets/private/reports/./q1.pdf",
                                             over="/assets/private/reports/./q1.pdf"), dict(doc=403)),
        ("dot_dot_inside", "/assets/public/dir/../hello.txt"),
        ("dot_dot_token_normalised", signed("/assets/private/dir/../secret.txt")),
        ("trailing_dot_segment_on_file", "/assets/public/hello.txt/."),
        ("trailing_dot_segment_on_dir", "/assets/public/dir/."),
        ("trailing_dot_dot_to_dir", "/assets/public/dir/inner.txt/.."),
        ("encoded_dot_segment", "/assets/public/%2e/hello.txt"),
        ("mixed_encoded_dot_dot", "/assets/public/dir/.%2e/hello.txt"),
        ("mixed_encoded_dot_dot_2", "/assets/public/dir/%2e./hello.txt"),
        ("dot_before_query", "/assets/public/dir/.?x=1"),
        ("dot_dot_before_query", "/assets/public/dir/sub/..?x=1"),
        ("trailing_dot_in_name", "/assets/public/hello.txt."),
        ("dotfile", "/assets/public/.hidden", dict(doc=200)),
        ("dotfile_encoded_dot", "/assets/public/%2Ehidden"),
        ("lexical_dot_dot_through_symlink", "/assets/public/link-to-private.txt/../hello.txt"),
    ]


def traversal_rows():
    return [
        ("private_to_public", "/assets/private/../public/hello.txt", dict(doc=200)),
        ("private_to_public_encoded", "/assets/private/%2e%2e/public/hello.txt"),
        ("public_to_private_no_token", "/assets/public/../private/secret.txt", dict(doc=403)),
        ("public_to_private_token_normalised", signed("/assets/public/../private/secret.txt"),
         dict(doc=200)),
        ("public_to_private_token_literal", signed("/assets/public/../private/secret.txt",
                                                   over="/assets/public/../private/secret.txt"),
         dict(doc=403)),
        ("encoded_dots_no_token", "/assets/public/%2e%2e/private/secret.txt", dict(doc=403)),
        ("encoded_dots_token", signed("/assets/public/%2e%2e/private/secret.txt"), dict(doc=200)),
        ("encoded_slash_no_token", "/assets/public/..%2fprivate/secret.txt", dict(doc=403)),
        ("encoded_slash_token", signed("/assets/public/..%2fprivate/secret.txt")),
        ("fully_encoded_token", signed("/assets/public/%2e%2e%2fprivate%2fsecret.txt")),
        ("above_root", "/assets/../../etc/passwd", dict(doc=400)),
        ("encoded_to_root", "/assets/private/%2e%2e/%2e%2e/%2e%2e/etc/passwd", dict(doc=400)),
        ("to_root_then_outside", "/assets/public/../../etc/passwd"),
        ("root_dot_dot", "/.."),
        ("root_dot_dot_then_assets", "/../assets/public/hello.txt"),
        ("three_up_from_public", "/assets/public/../../../x"),
        ("private_dot_dot_is_catchall", "/assets/private/.."),
        ("private_dot_dot_slash", "/assets/private/../"),
        ("public_dot_dot_is_catchall", "/assets/public/.."),
        ("two_up_into_private", "/assets/public/dir/../../private/secret.txt"),
        ("zigzag_back_to_public", "/assets/public/../private/../public/hello.txt"),
        ("traversal_to_outside_file", "/assets/public/../../outside.txt"),
        ("absolute_path_in_key", "/assets/public//etc/passwd"),
    ]


def location_rows():
    return [
        ("assets_no_slash", "/assets"),
        ("assets_root", "/assets/", dict(doc=403)),
        ("private_no_slash", "/assets/private", dict(doc=403)),
        ("public_no_slash", "/assets/public", dict(doc=403)),
        ("private_root_no_token", "/assets/private/", dict(doc=403)),
        ("private_root_token", signed("/assets/private/")),
        ("public_root", "/assets/public/", dict(doc=403)),
        ("case_private_segment", signed("/assets/Private/secret.txt"), dict(doc=403)),
        ("case_public_segment", "/assets/PUBLIC/hello.txt"),
        ("case_assets_segment", "/ASSETS/public/hello.txt"),
        ("public_prefix_lookalike", "/assets/publicx/hello.txt"),
        ("private_prefix_lookalike", signed("/assets/private-x/secret.txt")),
        ("other_assets_dir", "/assets/other/x.txt"),
        ("storage_not_exposed", "/storage/public/hello.txt"),
        ("prefix_without_assets", "/public/hello.txt"),
        ("assets_lookalike", "/assetsx/public/hello.txt"),
    ]


def absolute_form_rows():
    return [
        ("absolute_private", b"http://localhost" + signed(Q1), dict(doc=200)),
        ("absolute_public", "http://localhost" + HELLO),
        ("absolute_uppercase_scheme_host", "HTTP://LOCALHOST" + HELLO),
        ("absolute_with_port", "http://localhost:80" + HELLO),
        ("absolute_other_host", "http://example.com" + HELLO),
        ("absolute_https_scheme", "https://localhost" + HELLO),
        ("absolute_traversal_no_token", "http://localhost/assets/public/../private/secret.txt"),
        ("absolute_encoded_slash_token", b"http://localhost" + signed("/assets/private/reports%2Fq1.pdf")),
        ("absolute_no_path", "http://localhost"),
        ("absolute_query_without_path", "http://localhost?x=1"),
        ("absolute_health", "http://localhost/health"),
    ]


def protocol_rows():
    return [
        ("http10_public", HELLO, dict(version="HTTP/1.0")),
        ("http10_no_host", HELLO, dict(version="HTTP/1.0", host=None)),
        ("http10_head_private", signed(Q1), dict(version="HTTP/1.0", method="HEAD")),
        ("other_host_header", HELLO, dict(host="media.example.com")),
        ("host_with_port", HELLO, dict(host="localhost:8080")),
    ]


# --- files on disk -----------------------------------------------------------

def public_fs_rows():
    return [
        ("public_get", HELLO, dict(doc=200)),
        ("public_head", HELLO, dict(method="HEAD", doc=200)),
        ("public_nested", "/assets/public/dir/inner.txt"),
        ("public_deeply_nested", "/assets/public/nested/a/b/c/deep.txt"),
        ("public_empty", "/assets/public/empty.txt", dict(doc=200)),
        ("public_empty_head", "/assets/public/empty.txt", dict(method="HEAD")),
        ("public_one_byte", "/assets/public/one.bin"),
        ("public_5mib", "/assets/public/big5.bin"),
        ("public_5mib_head", "/assets/public/big5.bin", dict(method="HEAD")),
        ("public_50mib", "/assets/public/big.bin"),
        ("public_50mib_head", "/assets/public/big.bin", dict(method="HEAD")),
        ("private_5mib", signed("/assets/private/big5.bin")),
        ("public_missing", "/assets/public/nope.txt", dict(doc=404)),
        ("public_missing_nested", "/assets/public/nope/dir/x.txt"),
        ("public_below_file", "/assets/public/hello.txt/x"),
        ("symlink_to_private", "/assets/public/link-to-private.txt", dict(doc=200)),
        ("symlink_to_private_head", "/assets/public/link-to-private.txt", dict(method="HEAD")),
        ("symlink_inside_prefix", "/assets/public/link-inside.txt"),
        ("symlink_dir_inside_prefix", "/assets/public/link-dir-inside/inner.txt"),
        ("symlink_dir_escape", "/assets/public/link-dir-escape/inner.txt"),
        ("symlink_outside_storage", "/assets/public/link-outside-storage.txt"),
        ("symlink_dangling", "/assets/public/link-dangling.txt"),
        ("symlink_loop", "/assets/public/link-loop"),
        ("symlink_private_to_public", signed("/assets/private/link-to-public.txt")),
        ("symlink_private_inside", signed("/assets/private/link-inside.txt")),
        ("fifo_public", "/assets/public/fifo", dict(doc=404)),
        ("fifo_public_head", "/assets/public/fifo", dict(method="HEAD")),
        ("fifo_public_range", "/assets/public/fifo", dict(headers=(("Range", "bytes=0-1"),))),
        ("fifo_private", signed("/assets/private/fifo")),
        ("device_public", "/assets/public/devnull"),
        ("mode_000_public", "/assets/public/noperm.txt"),
        ("mode_000_private", signed("/assets/private/noperm.txt")),
        ("mode_000_dir_file", "/assets/public/lockeddir/inside.txt"),
    ]


def mime_rows():
    rows = []
    for name in ["a.pdf", "a.txt", "a.json", "a.png", "a.PNG", "a.jpg", "a.jpeg", "a.svg",
                 "a.html", "a.htm", "a.webp", "a.mp4", "a.m3u8", "a.wasm", "a.xlsx", "a.csv",
                 "a.mjs", "a.md", "a.tar.gz", "noext", "a.gif", "a.css", "a.js", "a.xml",
                 "a.zip", "a.mp3", "a.woff2", "a.ico", "a.avif", "a.TXT", "a.Pdf", "a.", "a.b.c",
                 ".txt", ".hidden.pdf", "v1.2/readme", "a.json.bak"]:
        rows.append((f"mime_{name}", "/assets/public/types/" + name))
    rows += [
        ("mime_dotfile", "/assets/public/.hidden"),
        ("mime_complex_path", "/assets/public/types/./a.pdf"),
        ("mime_after_dot_dot", "/assets/public/types/v1.2/../a.svg"),
        ("mime_head", "/assets/public/types/a.pdf", dict(method="HEAD")),
        ("mime_private_json", signed("/assets/private/types/a.json")),
        ("mime_private_svg", signed("/assets/private/types/a.svg")),
        ("mime_private_pdf", signed("/assets/private/report.pdf")),
        ("mime_private_html_index_file", signed("/assets/private/site/index.html")),
    ]
    return rows


def directory_rows():
    return [
        ("dir_public_no_slash", "/assets/public/dir", dict(doc=301)),
        ("dir_public_no_slash_query", "/assets/public/dir?x=1"),
        ("dir_public_slash", "/assets/public/dir/"),
        ("dir_public_nested_no_slash", "/assets/public/dir/sub"),
        ("dir_public_nested_slash", "/assets/public/dir/sub/"),
        ("dir_public_empty_no_slash", "/assets/public/emptydir"),
        ("dir_public_empty_slash", "/assets/public/emptydir/"),
        ("dir_public_index_no_slash", "/assets/public/site"),
        ("dir_public_index_slash", "/assets/public/site/"),
        ("dir_public_index_file", "/assets/public/site/index.html"),
        ("dir_public_index_head", "/assets/public/site/", dict(method="HEAD")),
        ("dir_public_index_range", "/assets/public/site/", dict(headers=(("Range", "bytes=0-3"),))),
        ("dir_public_index_inm", "/assets/public/site/",
         dict(headers=(("If-None-Match", '"65937d25-14"'),))),
        ("dir_public_post_no_slash", "/assets/public/dir", dict(method="POST", headers=(("Content-Length", "0"),))),
        ("dir_public_post_index", "/assets/public/site/", dict(method="POST", headers=(("Content-Length", "0"),))),
        ("dir_public_put", "/assets/public/dir/", dict(method="PUT", headers=(("Content-Length", "0"),))),
        ("dir_symlink_inside_no_slash", "/assets/public/link-dir-inside"),
        ("dir_symlink_inside_slash", "/assets/public/link-dir-inside/"),
        ("dir_symlink_escape_no_slash", "/assets/public/link-dir-escape"),
        ("dir_symlink_escape_slash", "/assets/public/link-dir-escape/"),
        ("dir_mode_000", "/assets/public/lockeddir/"),
        ("dir_private_no_slash_token", signed("/assets/private/dir"), dict(doc=301)),
        ("dir_private_slash_token", signed("/assets/private/dir/"), dict(doc=403)),
        ("dir_private_slash_token_without_slash", signed("/assets/private/dir/",
                                                         over="/assets/private/dir")),
        ("dir_private_no_token", "/assets/private/dir"),
        ("dir_private_index_slash_token", signed("/assets/private/site/"), dict(doc=200)),
        ("dir_private_index_no_slash_token", signed("/assets/private/site")),
        ("dir_private_index_expired", signed("/assets/private/site/", expires=PAST)),
        ("dir_private_head_token", signed("/assets/private/dir"), dict(method="HEAD")),
    ]


# --- methods --------------------------------------------------------------

def method_rows():
    targets = [
        ("public", HELLO),
        ("public_missing", "/assets/public/nope.txt"),
        ("private_valid", signed(Q1)),
        ("private_no_token", Q1),
        ("private_expired", signed(Q1, expires=PAST)),
        ("private_missing_valid", signed("/assets/private/nope.txt")),
        ("health", "/health"),
        ("catchall", "/assets/"),
        ("root", "/nope"),
    ]
    rows = []
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"]:
        for name, target in targets:
            if method in ("GET", "HEAD") and name in ("public", "private_valid", "health"):
                continue   # covered elsewhere
            headers = (("Content-Length", "0"),) if method in ("POST", "PUT", "PATCH") else ()
            rows.append((f"method_{method.lower()}_{name}", target,
                         dict(method=method, headers=headers)))
    rows += [
        ("method_post_with_body_public", HELLO,
         dict(method="POST", headers=(("Content-Length", "5"),), body=b"hello")),
        ("method_put_with_body_private", signed(Q1),
         dict(method="PUT", headers=(("Content-Length", "5"),), body=b"hello")),
        ("method_options_asterisk", "*", dict(method="OPTIONS")),
        ("method_options_cors_preflight", HELLO,
         dict(method="OPTIONS", headers=(("Origin", "https://app.example.com"),
                                         ("Access-Control-Request-Method", "GET")))),
        ("method_get_with_body", HELLO,
         dict(headers=(("Content-Length", "3"),), body=b"abc")),
    ]
    # the recorded vectors' expectations for a few of them
    doc = {"method_post_public": 405, "method_put_public": 405, "method_patch_public": 405,
           "method_options_public": 405, "method_trace_public": 405,
           "method_post_private_valid": 405, "method_post_private_no_token": 403,
           "method_post_health": 200}
    return [(i, t, dict(o, doc=doc.get(i))) for i, t, o in rows]


# --- ranges -----------------------------------------------------------------

def range_rows():
    R = signed(RANGE)                   # 20 bytes "0123456789abcdefghij"

    def parts(n):
        """A Range value of n one-byte parts, 1000 bytes apart."""
        return "bytes=" + ",".join(f"{i * 1000}-{i * 1000}" for i in range(n))

    def rng(value, target=R, **kw):
        return (target, dict(headers=(("Range", value),), **kw))

    rows = [
        ("first5", *rng("bytes=0-4", doc=206)),
        ("suffix5", *rng("bytes=-5", doc=206)),
        ("open_end", *rng("bytes=15-", doc=206)),
        ("end_past_eof", *rng("bytes=18-100", doc=206)),
        ("first_byte", *rng("bytes=0-0", doc=206)),
        ("spaces", *rng("bytes= 0 - 4", doc=206)),
        ("uppercase_unit", *rng("BYTES=0-4", doc=206)),
        ("whole_open", *rng("bytes=0-", doc=206)),
        ("multi", *rng("bytes=0-1,4-5", doc=206)),
        ("multi_sum_exceeds", *rng("bytes=0-10,5-15", doc=200)),
        ("multi_one_unsatisfiable", *rng("bytes=0-1,100-200", doc=206)),
        ("start_at_eof", *rng("bytes=20-", doc=416)),
        ("reversed", *rng("bytes=5-2", doc=416)),
        ("garbage", *rng("bytes=abc", doc=416)),
        ("suffix_zero", *rng("bytes=-0", doc=416)),
        ("other_unit", *rng("items=0-1", doc=200)),
        ("head", *rng("bytes=0-4", method="HEAD", doc=206)),
        ("head_multi", *rng("bytes=0-1,4-5", method="HEAD")),
        ("last_byte", *rng("bytes=19-19")),
        ("last_byte_open", *rng("bytes=19-")),
        ("suffix_whole", *rng("bytes=-20")),
        ("suffix_longer_than_file", *rng("bytes=-21")),
        ("suffix_huge", *rng("bytes=-100")),
        ("exact_whole", *rng("bytes=0-19")),
        ("end_one_past", *rng("bytes=0-20")),
        ("end_overflow", *rng("bytes=0-99999999999999999999")),
        ("start_overflow", *rng("bytes=99999999999999999999-")),
        ("empty_spec", *rng("bytes=")),
        ("dash_only", *rng("bytes=-")),
        ("trailing_comma", *rng("bytes=1-2,")),
        ("leading_comma", *rng("bytes=,1-2")),
        ("multi_with_spaces", *rng("bytes=0-1, 3-4")),
        ("multi_overlapping", *rng("bytes=0-1,1-2")),
        ("multi_with_suffix", *rng("bytes=0-0,-1")),
        ("multi_out_of_order", *rng("bytes=5-5,0-0")),
        ("multi_many", *rng("bytes=0-0,2-2,4-4,6-6,8-8,10-10")),
        ("multi_sum_equals_size", *rng("bytes=0-9,10-19")),
        ("multi_sum_one_over", *rng("bytes=0-9,10-19,0-0")),
        ("multi_all_unsatisfiable", *rng("bytes=30-40,50-60")),
        ("space_before_equals", *rng("bytes =0-4")),
        ("no_equals", *rng("bytes 0-4")),
        ("semicolon_after", *rng("bytes=0-4;")),
        ("junk_after", *rng("bytes=0-4 x")),
        ("double_dash", *rng("bytes=--1")),
        ("plus_start", *rng("bytes=+1-2")),
        ("three_numbers", *rng("bytes=1-2-3")),
        ("hex_start", *rng("bytes=0x1-2")),
        ("no_dash", *rng("bytes=1")),
        ("negative_range", *rng("bytes=-1-2")),
        ("expired_token", *rng("bytes=0-4", target=signed(RANGE, expires=PAST), doc=410)),
        ("bad_token", *rng("bytes=0-4", target=signed(RANGE, md5="A" * 22))),
        ("public_first5", *rng("bytes=0-4", target=HELLO)),
        ("public_unsatisfiable", *rng("bytes=100-", target=HELLO)),
        ("public_multi", *rng("bytes=0-0,-1", target=HELLO)),
        ("empty_first_byte", *rng("bytes=0-0", target="/assets/public/empty.txt", doc=200)),
        ("empty_open", *rng("bytes=0-", target="/assets/public/empty.txt")),
        ("empty_start_1", *rng("bytes=1-", target="/assets/public/empty.txt", doc=416)),
        ("empty_suffix", *rng("bytes=-1", target="/assets/public/empty.txt")),
        ("empty_suffix_zero", *rng("bytes=-0", target="/assets/public/empty.txt")),
        ("empty_private", *rng("bytes=0-0", target=signed("/assets/private/empty.txt"))),
        ("one_byte_first", *rng("bytes=0-0", target="/assets/public/one.bin")),
        ("one_byte_suffix", *rng("bytes=-1", target="/assets/public/one.bin")),
        ("one_byte_past", *rng("bytes=1-", target="/assets/public/one.bin")),
        ("big5_first", *rng("bytes=0-0", target="/assets/public/big5.bin")),
        ("big5_last", *rng("bytes=-1", target="/assets/public/big5.bin")),
        ("big5_tail", *rng("bytes=5242870-", target="/assets/public/big5.bin")),
        ("big5_middle_mib", *rng("bytes=1000000-1999999", target="/assets/public/big5.bin")),
        ("big5_multi", *rng("bytes=0-9,-10,2621440-2621449", target="/assets/public/big5.bin")),
        ("big5_private_tail", *rng("bytes=-1000", target=signed("/assets/private/big5.bin"))),
        ("big50_tail", *rng("bytes=52428700-", target="/assets/public/big.bin")),
        ("big50_head_suffix", *rng("bytes=-100", target="/assets/public/big.bin", method="HEAD")),
        ("big50_past_2gib", *rng("bytes=3000000000-", target="/assets/public/big.bin")),
        ("duplicate_range_headers", R, dict(headers=(("Range", "bytes=0-1"), ("Range", "bytes=2-3")))),
        # the part cap, `max_ranges 64` on the nginx side (servers.py)
        ("max_ranges_at_cap", *rng(parts(64), target="/assets/public/big5.bin")),
        ("max_ranges_over_cap", *rng(parts(65), target="/assets/public/big5.bin")),
        ("max_ranges_over_cap_then_garbage",
         *rng(parts(65) + ",garbage", target="/assets/public/big5.bin")),
        ("max_ranges_at_cap_then_garbage",
         *rng(parts(64) + ",garbage", target="/assets/public/big5.bin")),
        ("max_ranges_unsatisfiable_parts_do_not_count",
         *rng(parts(64) + ",9999999-9999999" * 3, target="/assets/public/big5.bin")),
        ("max_ranges_private_over_cap", *rng(parts(65), target=signed("/assets/private/big5.bin"))),
    ]
    return [("range_" + i, t, o) for i, t, o in rows]


def if_range_rows():
    R = signed(RANGE)

    def with_range(if_range, rng="bytes=0-4", **kw):
        return (R, dict(headers=(("Range", rng), ("If-Range", if_range)), **kw))

    return [
        ("if_range_etag_match", *with_range(ETAG_RANGE, doc=206)),
        ("if_range_etag_stale", *with_range('"deadbeef-14"', doc=200)),
        ("if_range_weak_etag", *with_range("W/" + ETAG_RANGE, doc=200)),
        ("if_range_date_exact", *with_range(LM, doc=206)),
        ("if_range_date_later", *with_range(LATER, doc=200)),
        ("if_range_date_earlier", *with_range(EARLIER)),
        ("if_range_date_rfc850", *with_range(LM_RFC850)),
        ("if_range_date_asctime", *with_range(LM_ASCTIME)),
        ("if_range_garbage", *with_range("garbage")),
        ("if_range_unquoted_etag", *with_range(ETAG_RANGE.strip('"'))),
        ("if_range_etag_list", *with_range('"x", ' + ETAG_RANGE)),
        ("if_range_multi_match", *with_range(ETAG_RANGE, rng="bytes=0-1,4-5")),
        ("if_range_unsatisfiable_match", *with_range(ETAG_RANGE, rng="bytes=50-")),
        ("if_range_unsatisfiable_stale", *with_range('"stale"', rng="bytes=50-")),
        ("if_range_without_range", R, dict(headers=(("If-Range", ETAG_RANGE),))),
    ]


# --- conditional requests -------------------------------------------------

def conditional_rows():
    def cond(*headers, target=HELLO, **kw):
        return (target, dict(headers=headers, **kw))

    INM = "If-None-Match"
    IMS = "If-Modified-Since"
    IM = "If-Match"
    IUS = "If-Unmodified-Since"
    P = signed(Q1)
    rows = [
        # If-None-Match (weak comparison)
        ("inm_match", *cond((INM, ETAG_HELLO), doc=304)),
        ("inm_weak_match", *cond((INM, "W/" + ETAG_HELLO), doc=304)),
        ("inm_star", *cond((INM, "*"), doc=304)),
        ("inm_list_containing", *cond((INM, '"x", ' + ETAG_HELLO), doc=304)),
        ("inm_list_no_spaces", *cond((INM, '"x",' + ETAG_HELLO + ',"y"'))),
        ("inm_other", *cond((INM, '"other"'), doc=200)),
        ("inm_unquoted", *cond((INM, ETAG_HELLO.strip('"')))),
        ("inm_uppercase_hex", *cond((INM, ETAG_HELLO.upper()))),
        ("inm_lowercase_weak_prefix", *cond((INM, "w/" + ETAG_HELLO))),
        ("inm_trailing_junk", *cond((INM, ETAG_HELLO + "x"))),
        ("inm_head", *cond((INM, ETAG_HELLO), method="HEAD")),
        ("inm_empty_file", *cond((INM, '"65937d25-0"'), target="/assets/public/empty.txt")),
        ("inm_big5", *cond((INM, '"65937d25-500000"'), target="/assets/public/big5.bin")),
        # If-Modified-Since (nginx: exact match only)
        ("ims_exact", *cond((IMS, LM), doc=304)),
        ("ims_later", *cond((IMS, LATER), doc=200)),
        ("ims_later_1s", *cond((IMS, LATER_1S))),
        ("ims_earlier", *cond((IMS, EARLIER), doc=200)),
        ("ims_earlier_1s", *cond((IMS, EARLIER_1S))),
        ("ims_garbage", *cond((IMS, "garbage"), doc=200)),
        ("ims_rfc850_exact", *cond((IMS, LM_RFC850))),
        ("ims_asctime_exact", *cond((IMS, LM_ASCTIME))),
        ("ims_exact_with_length_suffix", *cond((IMS, LM + "; length=13"))),
        ("ims_lowercase", *cond((IMS, LM.lower()))),
        ("ims_exact_head", *cond((IMS, LM), method="HEAD")),
        ("ims_later_head", *cond((IMS, LATER), method="HEAD")),
        # If-Match (strong comparison)
        ("if_match_other", *cond((IM, '"other"'), doc=412)),
        ("if_match_weak", *cond((IM, "W/" + ETAG_HELLO), doc=412)),
        ("if_match_match", *cond((IM, ETAG_HELLO), doc=200)),
        ("if_match_star", *cond((IM, "*"), doc=200)),
        ("if_match_list_containing", *cond((IM, '"x", ' + ETAG_HELLO))),
        ("if_match_garbage", *cond((IM, "garbage"))),
        ("if_match_head_other", *cond((IM, '"other"'), method="HEAD")),
        # If-Unmodified-Since
        ("ius_earlier", *cond((IUS, EARLIER), doc=412)),
        ("ius_exact", *cond((IUS, LM), doc=200)),
        ("ius_later", *cond((IUS, LATER))),
        ("ius_garbage", *cond((IUS, "garbage"))),
        # combinations
        ("inm_match_ims_earlier", *cond((INM, ETAG_HELLO), (IMS, EARLIER), doc=200)),
        ("inm_other_ims_exact", *cond((INM, '"other"'), (IMS, LM), doc=200)),
        ("inm_match_ims_exact", *cond((INM, ETAG_HELLO), (IMS, LM))),
        ("inm_match_ims_later", *cond((INM, ETAG_HELLO), (IMS, LATER))),
        ("inm_match_ims_garbage", *cond((INM, ETAG_HELLO), (IMS, "garbage"))),
        ("inm_star_ims_earlier", *cond((INM, "*"), (IMS, EARLIER))),
        ("inm_other_ims_later", *cond((INM, '"other"'), (IMS, LATER))),
        ("inm_match_range", *cond((INM, ETAG_HELLO), ("Range", "bytes=0-4"), doc=304)),
        ("ims_exact_range", *cond((IMS, LM), ("Range", "bytes=0-4"))),
        ("ims_later_range", *cond((IMS, LATER), ("Range", "bytes=0-4"))),
        ("ims_later_unsatisfiable_range", *cond((IMS, LATER), ("Range", "bytes=100-"))),
        ("inm_match_unsatisfiable_range", *cond((INM, ETAG_HELLO), ("Range", "bytes=100-"))),
        ("if_match_ok_range", *cond((IM, ETAG_HELLO), ("Range", "bytes=0-4"))),
        ("if_match_fail_range", *cond((IM, '"other"'), ("Range", "bytes=0-4"))),
        ("ius_earlier_range", *cond((IUS, EARLIER), ("Range", "bytes=0-4"))),
        ("if_match_ok_ius_earlier", *cond((IM, ETAG_HELLO), (IUS, EARLIER))),
        ("if_match_fail_inm_match", *cond((IM, '"other"'), (INM, ETAG_HELLO))),
        ("ius_exact_inm_match", *cond((IUS, LM), (INM, ETAG_HELLO))),
        ("ius_earlier_inm_match", *cond((IUS, EARLIER), (INM, ETAG_HELLO))),
        ("if_range_match_inm_match", *cond(("Range", "bytes=0-4"), ("If-Range", ETAG_HELLO),
                                           (INM, ETAG_HELLO))),
        ("if_match_star_inm_star", *cond((IM, "*"), (INM, "*"))),
        # private and missing files
        ("private_inm_match", *cond((INM, ETAG_Q1), target=P, doc=304)),
        ("private_inm_match_bad_token", *cond((INM, ETAG_Q1), target=signed(Q1, md5="A" * 22),
                                              doc=403)),
        ("private_inm_match_expired", *cond((INM, ETAG_Q1), target=signed(Q1, expires=PAST))),
        ("private_ims_exact", *cond((IMS, LM), target=P)),
        ("private_ims_later", *cond((IMS, LATER), target=P)),
        ("private_if_match_other", *cond((IM, '"other"'), target=P)),
        ("missing_inm_star", *cond((INM, "*"), target="/assets/public/nope.txt")),
        ("missing_if_match_star", *cond((IM, "*"), target="/assets/public/nope.txt")),
    ]
    return [("cond_" + i, t, o) for i, t, o in rows]


def health_and_unknown_rows():
    return [
        ("health_get", "/health", dict(doc=200)),
        ("health_head", "/health", dict(method="HEAD")),
        ("health_trailing_slash", "/health/", dict(doc=404)),
        ("health_query", "/health?x=1"),
        ("health_uppercase", "/HEALTH"),
        ("healthz", "/healthz"),
        ("health_double_slash", "//health"),
        ("health_dot_segment", "/./health"),
        ("health_encoded", "/%68ealth"),
        ("health_trailing_dot", "/health/."),
        ("health_encoded_slash", "/health%2F"),
        ("health_fragment", "/health#x"),
        ("health_with_range", "/health", dict(headers=(("Range", "bytes=0-0"),))),
        ("health_with_inm", "/health", dict(headers=(("If-None-Match", "*"),))),
        ("root", "/"),
        ("index_html", "/index.html"),
        ("favicon", "/favicon.ico"),
        ("robots", "/robots.txt"),
        ("unknown", "/nope"),
        ("unknown_dir", "/nope/"),
    ]


GROUPS = [
    ("secure_link", secure_link_rows),
    ("expires", expires_syntax_rows),
    ("md5", md5_syntax_rows),
    ("query", query_rows),
    ("encoding", encoding_rows),
    ("unicode", unicode_space_plus_rows),
    ("chars", special_character_rows),
    ("slashes", slash_dot_rows),
    ("traversal", traversal_rows),
    ("location", location_rows),
    ("absolute", absolute_form_rows),
    ("protocol", protocol_rows),
    ("files", public_fs_rows),
    ("mime", mime_rows),
    ("dirs", directory_rows),
    ("methods", method_rows),
    ("range", range_rows),
    ("if_range", if_range_rows),
    ("conditional", conditional_rows),
    ("health", health_and_unknown_rows),
]


def build() -> list:
    cases, seen = [], set()
    for group, rows in GROUPS:
        for row in rows():
            ident, target, opts = row if len(row) == 3 else (*row, {})
            if ident in seen:
                raise AssertionError(f"duplicate case id {ident}")
            seen.add(ident)
            cases.append(Case(ident, group, b(target), **opts))
    return cases
