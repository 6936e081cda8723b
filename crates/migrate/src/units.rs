//! Sizes, throughputs and durations as people write and read them.

/// The catch-up throughput `ferry plan` assumes unless told otherwise:
/// 50 MB/s, a conservative figure for one flow between two clusters in the
/// same region (Ferry's own benchmarks on two cores go well past it on
/// loopback; a WAN link or a busy source is often below).
pub const DEFAULT_THROUGHPUT_BYTES_PER_SEC: f64 = 50_000_000.0;

/// A throughput that does not parse, or is not a positive finite rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid throughput \"{text}\": expected a positive rate such as \"50MB/s\", \"1GiB/s\" or \"50\" (MB/s)")]
pub struct InvalidThroughput {
    /// The text as given.
    pub text: String,
}

/// Parses a throughput such as `50MB/s`, `1.5 GiB/s`, `800KB`, `20B/s` or a
/// bare number (megabytes per second). Decimal units are powers of 1000,
/// binary ones (`KiB`, `MiB`, `GiB`) powers of 1024.
pub fn parse_throughput(text: &str) -> Result<f64, InvalidThroughput> {
    let bad = || InvalidThroughput {
        text: text.to_string(),
    };
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "" | "MB" => 1e6,
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let rate = number * factor;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(bad())
    }
}

/// `532 B`, `1.5 KB`, `12.3 MB`, `4.0 GB` (decimal units).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// A throughput as `50 MB/s`.
pub fn format_rate(bytes_per_sec: f64) -> String {
    let b = bytes_per_sec.round() as u64;
    if b >= 1000 && b % 1_000_000 == 0 {
        return format!("{} MB/s", b / 1_000_000);
    }
    format!("{}/s", format_bytes(b))
}

/// A duration in seconds as `under 1s`, `42s`, `3m 20s`, `2h 05m`,
/// `3d 04h` (rounded up to the shown precision).
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "forever".into();
    }
    if seconds < 1.0 {
        return "under 1s".into();
    }
    let s = seconds.ceil() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => {
            let m = s.div_ceil(60);
            format!("{}h {:02}m", m / 60, m % 60)
        }
        _ => {
            let h = s.div_ceil(3600);
            format!("{}d {:02}h", h / 24, h % 24)
        }
    }
}

/// A millisecond config value (such as `retention.ms`) as a duration.
pub fn format_ms(ms: i64) -> String {
    if ms < 0 {
        "unlimited".into()
    } else {
        format_duration(ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughputs_parse_with_and_without_units() {
        assert_eq!(parse_throughput("50").unwrap(), 50e6);
        assert_eq!(parse_throughput("50MB/s").unwrap(), 50e6);
        assert_eq!(parse_throughput("1.5 GB/s").unwrap(), 1.5e9);
        assert_eq!(parse_throughput("2MiB").unwrap(), 2.0 * 1024.0 * 1024.0);
        assert_eq!(parse_throughput("20B/s").unwrap(), 20.0);
        for bad in ["", "0", "-5", "fast", "5 furlongs/s", "1e400"] {
            let err = parse_throughput(bad).unwrap_err();
            assert_eq!(err.text, bad);
            assert!(err.to_string().contains(&format!("\"{bad}\"")), "{err}");
        }
    }

    #[test]
    fn sizes_rates_and_durations_read_well() {
        assert_eq!(format_bytes(532), "532 B");
        assert_eq!(format_bytes(1_500), "1.5 KB");
        assert_eq!(format_bytes(12_340_000), "12.3 MB");
        assert_eq!(format_rate(50e6), "50 MB/s");
        assert_eq!(format_rate(20.0), "20 B/s");
        assert_eq!(format_duration(0.2), "under 1s");
        assert_eq!(format_duration(41.2), "42s");
        assert_eq!(format_duration(200.0), "3m 20s");
        assert_eq!(format_duration(7_201.0), "2h 01m");
        assert_eq!(format_duration(3.0 * 86_400.0 + 1.0), "3d 01h");
        assert_eq!(format_ms(-1), "unlimited");
        assert_eq!(format_ms(604_800_000), "7d 00h");
    }
}
