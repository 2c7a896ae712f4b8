//! HDR histograms of latencies: recording, the base64 V2 encoding of the
//! JSON files, merging, and the [`Latency`] figures read from them.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, from 1 µs to 1 hour, with three
/// significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

pub(super) fn record_seconds(histogram: &mut Histogram<u64>, seconds: f64) {
    let us = (seconds * 1e6).round().clamp(1.0, HIST_MAX_US as f64) as u64;
    histogram.saturating_record(us);
}

/// A histogram as base64 of its V2 encoding, for JSON files.
pub fn encode_histogram(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .expect("histogram serializes to memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The V2 encoding's cookie (uncompressed), as [`encode_histogram`]
/// writes it.
const V2_COOKIE: u32 = 0x1c84_9313;
/// Bytes of the V2 header before the counts.
const V2_HEADER: usize = 40;

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    // The header first: a damaged one can ask for tens of megabytes of
    // counts, so only the shape this module writes is read.
    let Some(header) = bytes.get(..V2_HEADER) else {
        return Err(format!("histogram of {} bytes is cut short", bytes.len()));
    };
    let field = |range: std::ops::Range<usize>| {
        header[range]
            .iter()
            .fold(0u64, |n, &byte| n << 8 | u64::from(byte))
    };
    let (cookie, length, digits, highest) =
        (field(0..4), field(4..8), field(12..16), field(24..32));
    let payload = (bytes.len() - V2_HEADER) as u64;
    if length != payload {
        return Err(format!(
            "histogram says {length} bytes of counts follow its header, {payload} do"
        ));
    }
    if cookie != u64::from(V2_COOKIE) || digits > 3 || highest > HIST_MAX_US {
        return Err(format!(
            "histogram header (cookie {cookie:#x}, {digits} significant digits, up to \
             {highest} µs) is not the V2 shape cacherate writes (3 digits up to \
             {HIST_MAX_US} µs)"
        ));
    }
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

/// Average and quantiles of a latency, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_histogram(histogram: &Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let s = |us: u64| us as f64 / 1e6;
        Latency {
            avg: histogram.mean() / 1e6,
            p50: s(histogram.value_at_quantile(0.50)),
            p95: s(histogram.value_at_quantile(0.95)),
            p99: s(histogram.value_at_quantile(0.99)),
            max: s(histogram.max()),
        }
    }
}

/// Merges encoded histograms (the samples of a point). One that does not
/// decode is an error: skipping it would give a wrong quantile.
pub fn merge_histograms<'a>(
    encoded: impl IntoIterator<Item = &'a str>,
) -> Result<Histogram<u64>, String> {
    let mut merged = new_histogram();
    for text in encoded {
        let histogram = decode_histogram(text)?;
        merged
            .add(&histogram)
            .map_err(|e| format!("histogram does not merge: {e:?}"))?;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_header_asking_for_another_shape_is_refused_before_reading() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut histogram = new_histogram();
        histogram.record(1500).unwrap();
        let mut bytes = engine.decode(encode_histogram(&histogram)).unwrap();
        assert!(decode_histogram(&engine.encode(&bytes)).is_ok());
        // Five significant digits: megabytes of counts.
        bytes[15] = 5;
        let error = decode_histogram(&engine.encode(&bytes)).unwrap_err();
        assert!(error.contains("5 significant digits"), "{error}");
        bytes[15] = 3;
        bytes[7] = bytes[7].wrapping_add(1);
        let error = decode_histogram(&engine.encode(&bytes)).unwrap_err();
        assert!(error.contains("bytes of counts follow"), "{error}");
        let error = decode_histogram(&engine.encode(&bytes[..20])).unwrap_err();
        assert!(error.contains("cut short"), "{error}");
    }
}
