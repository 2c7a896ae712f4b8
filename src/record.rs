//! The raw facts of one request, successful or not: one row of
//! `detailed_results_{ctx}.csv`. Every figure is computed from these.

use serde::{Deserialize, Serialize};

crate::names::named_enum! {
    "snake_case",
    /// Why a request failed. Failed requests are kept as rows and counted.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum ErrorKind {
        /// No connection could be made.
        Connect,
        /// `--request-timeout` passed.
        Timeout,
        /// 429 Too Many Requests.
        RateLimited,
        /// Another 4xx status. (Rows written before the names were one wrote
        /// `http4xx`.)
        #[serde(rename = "http_4xx", alias = "http4xx")]
        #[strum(serialize = "http_4xx")]
        Http4xx,
        /// A 5xx status.
        #[serde(rename = "http_5xx", alias = "http5xx")]
        #[strum(serialize = "http_5xx")]
        Http5xx,
        /// The connection broke during the response.
        Disconnect,
        /// The stream ended before its last event.
        Incomplete,
        /// The server sent an error event inside the stream.
        StreamError,
        /// The response could not be understood.
        Protocol,
    }
}

impl ErrorKind {
    pub fn for_status(status: u16) -> ErrorKind {
        match status {
            429 => ErrorKind::RateLimited,
            500.. => ErrorKind::Http5xx,
            _ => ErrorKind::Http4xx,
        }
    }

    /// Its name in rows and messages (its serde name).
    pub fn name(&self) -> &'static str {
        (*self).into()
    }
}

/// One request. Times are seconds: `launch_unix_s` on the wall clock (taken
/// from a monotonic clock anchored once per process), the others since
/// launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub context_size: u64,
    pub cache_hit_rate: u32,
    pub phase_id: String,
    /// Position of the phase within its point, from 0.
    pub phase_index: u32,
    pub concurrency: u32,
    /// Unique in the run; seeds the request's unique suffix.
    pub request_id: u64,
    /// Index into the run's endpoints.
    pub endpoint: u32,
    /// The working-set prompt whose prefix was sent.
    pub working_set_prompt: u32,
    pub launch_unix_s: f64,
    /// Time from the slot's previous request ending to this launch; empty
    /// for a slot's first request.
    pub dispatch_delay_s: Option<f64>,
    /// Time to the first event carrying generated text.
    pub ttft_s: Option<f64>,
    /// Time to the last event carrying generated text.
    pub ttlt_s: Option<f64>,
    /// Time to the end of the response.
    pub finish_s: f64,
    /// Events that carried generated text.
    pub chunks: u32,
    /// Longest gap between two such events.
    pub max_chunk_gap_s: Option<f64>,
    /// When each of those events came, in microseconds since launch.
    #[serde(default, with = "number_list")]
    pub chunk_times_us: Vec<u32>,
    /// Tokens each event carried: one number when every event carried that
    /// many, one per event when they differ, empty when the server did not
    /// say (its event count and token count differ and it sent no
    /// `token_ids`).
    #[serde(default, with = "number_list")]
    pub tokens_per_chunk: Vec<u32>,
    pub expected_prompt_tokens: u64,
    pub target_cached_tokens: u64,
    /// From the server's `usage`.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`, when reported.
    pub cached_tokens: Option<u64>,
    /// HTTP status; 0 when no response came.
    pub status: u16,
    /// The first send met a connection the server had just closed; the
    /// request went again on a new one (TTFT still counts from the first).
    #[serde(default)]
    pub resent: bool,
    pub error_kind: Option<ErrorKind>,
    pub error: Option<String>,
    /// Launched inside the phase's steady-state window and finished before
    /// its end (what `--strict-time-window` counts); false for warm-up
    /// requests.
    pub in_window: bool,
}

/// Per-chunk token counts for the record: the server's own when it gave
/// them for every chunk (`reported`, 0 where it did not, empty when it
/// never did), else one each when the chunks and the completion tokens
/// agree, else nothing.
pub fn tokens_per_chunk(reported: &[u32], chunks: u32, completion_tokens: Option<u64>) -> Vec<u32> {
    let counts: Vec<u32> = if !reported.is_empty() && reported.iter().all(|&n| n > 0) {
        reported.to_vec()
    } else if chunks > 0 && completion_tokens == Some(u64::from(chunks)) {
        return vec![1];
    } else {
        return Vec::new();
    };
    match counts.first() {
        Some(&first) if counts.iter().all(|&n| n == first) => vec![first],
        _ => counts,
    }
}

/// A list of numbers in one CSV cell, separated by `;`.
mod number_list {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(values: &[u32], serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(values.len() * 7);
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                text.push(';');
            }
            text.push_str(itoa::Buffer::new().format(*value));
        }
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(';')
            .map(|n| {
                n.parse()
                    .map_err(|e| D::Error::custom(format!("{n:?}: {e}")))
            })
            .collect()
    }
}

impl RequestRecord {
    /// The row `--chunk-times summary` writes: no chunk times, and the
    /// tokens per chunk only when every chunk carried the same number.
    /// TTFT, TTLT, the chunk count and the longest gap stay.
    pub fn summary(&self) -> RequestRecord {
        RequestRecord {
            chunk_times_us: Vec::new(),
            tokens_per_chunk: if self.tokens_per_chunk.len() == 1 {
                self.tokens_per_chunk.clone()
            } else {
                Vec::new()
            },
            ..self.clone()
        }
    }

    pub fn ok(&self) -> bool {
        self.error_kind.is_none()
    }

    /// Inter-token latency: `(TTLT - TTFT) / (completion_tokens - 1)`.
    pub fn itl_s(&self) -> Option<f64> {
        let tokens = self.completion_tokens.filter(|&n| n > 1)?;
        Some((self.ttlt_s? - self.ttft_s?) / (tokens - 1) as f64)
    }

    /// Output tokens per second of generation: the tokens after the first
    /// over the time from the first to the last.
    pub fn output_tps(&self) -> Option<f64> {
        let itl = self.itl_s()?;
        (itl > 0.0).then(|| 1.0 / itl)
    }

    /// Prompt tokens as the server counted them, else as sent.
    pub fn prompt_tokens_or_expected(&self) -> u64 {
        self.prompt_tokens.unwrap_or(self.expected_prompt_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_per_chunk_is_what_the_server_said_or_one_each_when_it_adds_up() {
        assert_eq!(tokens_per_chunk(&[2, 2, 2], 3, Some(6)), [2]);
        assert_eq!(tokens_per_chunk(&[2, 1, 3], 3, Some(6)), [2, 1, 3]);
        assert_eq!(tokens_per_chunk(&[], 3, Some(3)), [1]);
        // Four tokens in three unlabelled chunks: which one had two is
        // not known.
        assert!(tokens_per_chunk(&[], 3, Some(4)).is_empty());
        assert!(tokens_per_chunk(&[2, 0], 2, Some(3)).is_empty());
        assert!(tokens_per_chunk(&[], 0, Some(0)).is_empty());
        assert!(tokens_per_chunk(&[], 0, None).is_empty());
    }

    #[test]
    fn number_lists_survive_a_csv_round_trip() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Row {
            id: u32,
            #[serde(default, with = "number_list")]
            times: Vec<u32>,
            #[serde(default, with = "number_list")]
            empty: Vec<u32>,
        }
        let row = Row {
            id: 1,
            times: vec![9000, 20000, u32::MAX],
            empty: Vec::new(),
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(&row).unwrap();
        let bytes = writer.into_inner().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "id,times,empty\n1,9000;20000;4294967295,\n"
        );
        let back: Row = csv::Reader::from_reader(&bytes[..])
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back, row);
        let bad = csv::Reader::from_reader(&b"id,times,empty\n1,9000;x,\n"[..])
            .deserialize::<Row>()
            .next()
            .unwrap();
        assert!(bad.unwrap_err().to_string().contains("\"x\""));
    }
}
