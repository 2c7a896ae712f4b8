//! How the reports' tables write numbers: the same units and precision as
//! the table `run` prints (throughput in whole tok/s, TTFT in seconds to the
//! millisecond, ITL in milliseconds), and a dash for what is not known.

/// Tokens per second: whole numbers with thousands separators; one decimal
/// below 100, where the fraction still says something.
pub fn tps(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    grouped(value.round() as i64)
}

/// Seconds with three decimals (`0.123 s`).
pub fn seconds(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3} s")
    } else {
        "–".into()
    }
}

/// Seconds shown as milliseconds with one decimal (`4.2 ms`).
pub fn millis(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        "–".into()
    }
}

/// A fraction as a percentage with one decimal (`87.5 %`).
pub fn percent(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.1} %", fraction * 100.0)
    } else {
        "–".into()
    }
}

/// An optional fraction as a percentage, a dash when unknown.
pub fn percent_opt(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "–".into(), percent)
}

/// An integer with thousands separators (`1,234,567`).
pub fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds since the Unix epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn unix_time(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".into();
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(seconds);
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
        + " UTC"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_in_the_terminal_table() {
        assert_eq!(tps(1_234_567.4), "1,234,567");
        assert_eq!(tps(999.5), "1,000");
        assert_eq!(tps(42.26), "42.3");
        assert_eq!(tps(f64::NAN), "–");
        assert_eq!(seconds(0.0554), "0.055 s");
        assert_eq!(millis(0.0016), "1.6 ms");
        assert_eq!(percent(0.875), "87.5 %");
        assert_eq!(percent_opt(None), "–");
        assert_eq!(grouped(-1000), "-1,000");
        assert_eq!(grouped(100), "100");
        assert_eq!(unix_time(0.0), "1970-01-01 00:00:00 UTC");
    }
}
