//! The subset of Structured Field Values (RFC 9651) the draft needs: parse an Item or a
//! Dictionary field value exactly as RFC 9651 §4.2 says, keeping only the values the draft
//! reads (Integers, Booleans) and validating every other type so that a malformed field is
//! rejected as a whole ("Other values MUST cause the entire header field to be ignored").
//! Pure, no I/O; unit tested below.

/// A bare item; types the draft never reads keep no value, they only have to be well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bare {
    Integer(i64),
    Boolean(bool),
    /// Decoded (`Content-Digest`'s digests are Byte Sequences).
    ByteSequence(Vec<u8>),
    /// Decimal, String, Token, Date or Display String.
    Other,
}

/// A Dictionary member value: an Item, or an Inner List (which the draft never uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Item(Bare),
    InnerList,
}

/// Parses an Item field value (parameters are validated and dropped).
pub fn parse_item(input: &str) -> Option<Bare> {
    let mut p = Parser::new(input);
    p.skip_sp();
    let item = p.item()?;
    p.skip_sp();
    p.at_end().then_some(item)
}

/// Parses a Dictionary field value into its members in order; a later duplicate key
/// overrides an earlier one (RFC 9651 §4.2.2), which the caller gets by taking the last.
pub fn parse_dictionary(input: &str) -> Option<Vec<(String, Member)>> {
    let mut p = Parser::new(input);
    p.skip_sp();
    let mut members: Vec<(String, Member)> = Vec::new();
    while !p.at_end() {
        let key = p.key()?;
        let value = if p.eat(b'=') {
            if p.peek() == Some(b'(') {
                p.inner_list()?;
                Member::InnerList
            } else {
                Member::Item(p.item()?)
            }
        } else {
            p.parameters()?;
            Member::Item(Bare::Boolean(true))
        };
        members.retain(|(k, _)| *k != key);
        members.push((key, value));
        p.skip_ows();
        if p.at_end() {
            return Some(members);
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip_ows();
        if p.at_end() {
            return None; // trailing comma
        }
    }
    Some(members) // an empty field value is an empty Dictionary
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            s: input.as_bytes(),
            i: 0,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }
    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn item(&mut self) -> Option<Bare> {
        let bare = self.bare_item()?;
        self.parameters()?;
        Some(bare)
    }

    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn inner_list(&mut self) -> Option<()> {
        self.next(); // '('
        loop {
            self.skip_sp();
            if self.eat(b')') {
                return self.parameters();
            }
            self.item()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.next()? {
            b'a'..=b'z' | b'*' => {}
            _ => return None,
        }
        while matches!(
            self.peek(),
            Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')
        ) {
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn bare_item(&mut self) -> Option<Bare> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b'*' | b'A'..=b'Z' | b'a'..=b'z' => self.token(),
            b':' => self.byte_sequence(),
            b'?' => {
                self.i += 1;
                match self.next()? {
                    b'0' => Some(Bare::Boolean(false)),
                    b'1' => Some(Bare::Boolean(true)),
                    _ => None,
                }
            }
            b'@' => {
                self.i += 1;
                match self.number()? {
                    Bare::Integer(_) => Some(Bare::Other),
                    _ => None, // a Date is an Integer, never a Decimal
                }
            }
            b'%' => self.display_string(),
            _ => None,
        }
    }

    /// RFC 9651 §4.2.4: at most 15 digits for an Integer, 12.3 for a Decimal.
    fn number(&mut self) -> Option<Bare> {
        let negative = self.eat(b'-');
        let start = self.i;
        let mut dot = None;
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' => {}
                b'.' if dot.is_none() => {
                    if self.i - start > 12 {
                        return None;
                    }
                    dot = Some(self.i);
                }
                _ => break,
            }
            self.i += 1;
            if dot.is_none() && self.i - start > 15 || self.i - start > 16 {
                return None;
            }
        }
        let digits = &self.s[start..self.i];
        if digits.is_empty() || !digits[0].is_ascii_digit() {
            return None;
        }
        match dot {
            None => {
                let magnitude: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
                Some(Bare::Integer(if negative { -magnitude } else { magnitude }))
            }
            Some(d) => {
                let fraction = self.i - d - 1;
                (1..=3).contains(&fraction).then_some(Bare::Other)
            }
        }
    }

    fn string(&mut self) -> Option<Bare> {
        self.next(); // '"'
        loop {
            match self.next()? {
                b'\\' => {
                    if !matches!(self.next()?, b'"' | b'\\') {
                        return None;
                    }
                }
                b'"' => return Some(Bare::Other),
                0x20..=0x7e => {}
                _ => return None,
            }
        }
    }

    fn token(&mut self) -> Option<Bare> {
        self.i += 1;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        Some(Bare::Other)
    }

    /// RFC 9651 §4.2.7: base64, padding optional ("parsers SHOULD NOT fail when `=`
    /// padding is not present").
    fn byte_sequence(&mut self) -> Option<Bare> {
        use base64::Engine as _;
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        self.next(); // ':'
        let start = self.i;
        loop {
            match self.next()? {
                b':' => break,
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => {}
                _ => return None,
            }
        }
        LENIENT
            .decode(&self.s[start..self.i - 1])
            .ok()
            .map(Bare::ByteSequence)
    }

    fn display_string(&mut self) -> Option<Bare> {
        self.next(); // '%'
        if !self.eat(b'"') {
            return None;
        }
        let mut bytes = Vec::new();
        loop {
            match self.next()? {
                b'%' => {
                    let hex = |b: u8| match b {
                        b'0'..=b'9' => Some(b - b'0'),
                        b'a'..=b'f' => Some(b - b'a' + 10),
                        _ => None,
                    };
                    let hi = hex(self.next()?)?;
                    let lo = hex(self.next()?)?;
                    bytes.push(hi << 4 | lo);
                }
                b'"' => return std::str::from_utf8(&bytes).ok().map(|_| Bare::Other),
                b @ 0x20..=0x7e => bytes.push(b),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items() {
        assert_eq!(parse_item("42"), Some(Bare::Integer(42)));
        assert_eq!(parse_item("  7  "), Some(Bare::Integer(7)));
        assert_eq!(parse_item("-3"), Some(Bare::Integer(-3)));
        assert_eq!(
            parse_item("999999999999999"),
            Some(Bare::Integer(999_999_999_999_999))
        );
        assert_eq!(parse_item("1000000000000000"), None); // 16 digits
        assert_eq!(parse_item("5;a=1;b"), Some(Bare::Integer(5)));
        assert_eq!(parse_item("?1"), Some(Bare::Boolean(true)));
        assert_eq!(parse_item("?0;x=\"y\""), Some(Bare::Boolean(false)));
        assert_eq!(parse_item("1.5"), Some(Bare::Other));
        assert_eq!(parse_item("1."), None);
        assert_eq!(parse_item("1.2345"), None);
        assert_eq!(parse_item("\"a\\\"b\""), Some(Bare::Other));
        assert_eq!(parse_item("\"a\\nb\""), None);
        assert_eq!(parse_item("tok/en:x"), Some(Bare::Other));
        assert_eq!(
            parse_item(":aGk=:"),
            Some(Bare::ByteSequence(b"hi".to_vec()))
        );
        assert_eq!(
            parse_item(":aGk:"),
            Some(Bare::ByteSequence(b"hi".to_vec()))
        );
        assert_eq!(parse_item("::"), Some(Bare::ByteSequence(Vec::new())));
        assert_eq!(parse_item(":a=Gk:"), None);
        assert_eq!(parse_item("@1700000000"), Some(Bare::Other));
        assert_eq!(parse_item("%\"caf%c3%a9\""), Some(Bare::Other));
        assert_eq!(parse_item("%\"%ff\""), None); // not UTF-8
        for bad in [
            "", " ", "?", "?2", "?true", "1 2", "+1", "1,2", "\t1", "1\t", "a=1", "5;A=1",
        ] {
            assert_eq!(parse_item(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dictionaries() {
        let d = parse_dictionary("max-size=100, min-size=0,flag, x=(1 2);p, y=?0")
            .expect("test input is valid");
        let keys: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["max-size", "min-size", "flag", "x", "y"]);
        assert_eq!(d[0].1, Member::Item(Bare::Integer(100)));
        assert_eq!(d[2].1, Member::Item(Bare::Boolean(true)));
        assert_eq!(d[3].1, Member::InnerList);
        let dup = parse_dictionary("a=1, b=2, a=3").expect("test input is valid");
        assert_eq!(
            dup,
            [
                ("b".into(), Member::Item(Bare::Integer(2))),
                ("a".into(), Member::Item(Bare::Integer(3)))
            ]
        );
        assert_eq!(parse_dictionary(""), Some(vec![]));
        for bad in [
            "a=1,", "a=1,,b=2", "A=1", "a=1 b=2", "a=(1", "a=(1,2)", "=1",
        ] {
            assert_eq!(parse_dictionary(bad), None, "{bad:?}");
        }
    }
}
