//! Sizes on the command line and in the output, and the other values of the command line in
//! the Go syntax tusd's users know: durations (`500ms`, `10s`, `1m30s`) and booleans.

use std::time::Duration;

pub(crate) const KIB: u64 = 1 << 10;
pub(crate) const MIB: u64 = 1 << 20;
pub(crate) const GIB: u64 = 1 << 30;

/// A byte count: plain digits, or digits with a unit. `k`/`K`/`KiB`, `M`/`MiB`, `G`/`GiB`,
/// `T`/`TiB` are powers of 1024 (as in dd and curl); `KB`, `MB`, `GB`, `TB` are powers of
/// 1000. A trailing `B` alone means bytes. Underscores are ignored (`1_000_000`).
pub(crate) fn parse_bytes(raw: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size {raw:?} (examples: 10240, 10KiB, 8MiB, 1GiB, 5MB)");
    let text: String = raw.trim().chars().filter(|&c| c != '_').collect();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(invalid());
    }
    let number: u64 = text[..digits].parse().map_err(|_| invalid())?;
    let multiplier: u64 = match text[digits..].trim_start() {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" | "kiB" | "Ki" => KIB,
        "M" | "m" | "MiB" | "Mi" => MIB,
        "G" | "g" | "GiB" | "Gi" => GIB,
        "T" | "t" | "TiB" | "Ti" => GIB * KIB,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    number.checked_mul(multiplier).ok_or_else(invalid)
}

/// A byte count for people: the largest binary unit it reaches, exact when it is a whole
/// number of that unit (`10 KiB`, `1 GiB`), else with decimals (`1.5 KiB`, `300.2 MiB`).
pub(crate) fn format_bytes(bytes: u64) -> String {
    let (unit, name, decimals) = if bytes >= GIB {
        (GIB, "GiB", 2)
    } else if bytes >= MIB {
        (MIB, "MiB", 1)
    } else if bytes >= KIB {
        (KIB, "KiB", 1)
    } else {
        return format!("{bytes} B");
    };
    if bytes % unit == 0 {
        format!("{} {name}", bytes / unit)
    } else {
        format!("{:.decimals$} {name}", bytes as f64 / unit as f64)
    }
}

/// A duration as Go's `time.ParseDuration` reads it: `0`, or numbers (fractions allowed) each
/// with a unit of `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, in sequence (`1m30s`, `1.5h`), plus
/// `d` for days as the server's flags take it. Negative durations mean nothing here and are
/// refused.
pub(crate) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {raw:?} (examples: 500ms, 10s, 1m30s, 2h)");
    let text = raw.strip_prefix('+').unwrap_or(raw);
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut seconds = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(split);
        let number: f64 = number.parse().map_err(|_| invalid())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(invalid()),
        };
        seconds += number * scale;
        rest = tail;
    }
    if text.is_empty() {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| invalid())
}

/// A boolean as Go's `strconv.ParseBool` reads it (`--timed-create=false`, `=0`, `=t`).
pub(crate) fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {raw:?} (use true or false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("10240"), Ok(10240));
        assert_eq!(parse_bytes("10KiB"), Ok(10240));
        assert_eq!(parse_bytes("10k"), Ok(10240));
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("8 MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("5MB"), Ok(5_000_000));
        assert_eq!(parse_bytes("1_000"), Ok(1000));
        assert_eq!(parse_bytes("0"), Ok(0));
        for bad in ["", "MiB", "1.5GiB", "-1", "1 XB", "99999999999999999999"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
        assert!(parse_bytes("16777216TiB").is_err(), "overflow");
    }

    #[test]
    fn sizes_format() {
        assert_eq!(format_bytes(10240), "10 KiB");
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes(128 << 20), "128 MiB");
        assert_eq!(format_bytes(1000), "1000 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(307_372 * 1024), "300.2 MiB");
        assert_eq!(format_bytes(3 << 29), "1.50 GiB");
    }

    #[test]
    fn durations_parse_as_go_does() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("300s"), Ok(ms(300_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5h"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("+2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["", "10", "s", "-1s", "1x", "1.2.3s", "5 s", "1w"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn booleans_parse_as_go_does() {
        for yes in ["1", "t", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(yes), Ok(true));
        }
        for no in ["0", "f", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(no), Ok(false));
        }
        assert!(parse_bool("yes").is_err());
    }
}
