//! Reading a server's Prometheus `/metrics`: one parser for the text
//! exposition format, and what a run takes from it: the server's own
//! prefix-cache counters (its view of the cache-hit rate beside the
//! client's) and vLLM's KV cache size.
//!
//! The format: <https://prometheus.io/docs/instrumenting/exposition_formats/>.
//! A line that cannot be read is skipped and counted; it spoils only the
//! metric it belongs to, never the others.

use std::borrow::Cow;
use std::sync::Once;

/// One sample: a metric name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// Label names and values, escapes undone, in the order given.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value.as_ref())
    }
}

/// A line that is neither a sample, a comment nor blank.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed<'a> {
    /// The metric name the line starts with, when it starts with one.
    pub name: Option<&'a str>,
    pub line: &'a str,
    /// What is wrong with it.
    pub why: &'static str,
}

/// The samples of a `/metrics` text and the lines that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition<'a> {
    pub samples: Vec<Sample<'a>>,
    pub malformed: Vec<Malformed<'a>>,
}

/// Reads a Prometheus text exposition. `# HELP`, `# TYPE` and other
/// comments are skipped; so is an OpenMetrics exemplar after a value.
pub fn parse(text: &str) -> Exposition<'_> {
    let mut exposition = Exposition::default();
    for line in text.lines() {
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match sample(line) {
            Ok(sample) => exposition.samples.push(sample),
            Err(why) => exposition.malformed.push(Malformed {
                name: Some(metric_name(line).0).filter(|name| !name.is_empty()),
                line,
                why,
            }),
        }
    }
    exposition
}

impl<'a> Exposition<'a> {
    /// The samples of metric `name`.
    pub fn samples_of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Sample<'a>> + 's {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of every sample of `name` (all label sets). None when it
    /// has none, or when one of its lines could not be read: a sum without
    /// it would be a wrong number, not a smaller one.
    pub fn sum(&self, name: &str) -> Option<f64> {
        if self.malformed.iter().any(|m| m.name == Some(name)) {
            return None;
        }
        self.samples_of(name)
            .map(|s| s.value)
            .reduce(|total, value| total + value)
    }

    /// Says once per process that lines were skipped, with the first.
    fn warn_malformed_once(&self) {
        static WARNED: Once = Once::new();
        let Some(first) = self.malformed.first() else {
            return;
        };
        tracing::debug!(
            lines = self.malformed.len(),
            "skipped unreadable lines of the server's metrics"
        );
        WARNED.call_once(|| {
            let shown: String = first.line.chars().take(200).collect();
            tracing::warn!(
                "{} line(s) of the server's metrics could not be read and were skipped \
                 (reported once), the first ({}): {shown:?}",
                self.malformed.len(),
                first.why
            );
        });
    }
}

/// The metric name at the start of `line` (`[a-zA-Z_:][a-zA-Z0-9_:]*`,
/// empty if there is none) and the rest.
fn metric_name(line: &str) -> (&str, &str) {
    let end = line
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(line.len(), |(i, _)| i);
    line.split_at(end)
}

/// A label name (`[a-zA-Z_][a-zA-Z0-9_]*`) at the start of `text`, and
/// the rest.
fn label_name(text: &str) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
        .map_or(text.len(), |(i, _)| i);
    text.split_at(end)
}

/// A quoted label value at the start of `text` (after its opening quote),
/// escapes (`\\`, `\"`, `\n`) undone, and the rest after its closing quote.
fn label_value(text: &str) -> Result<(Cow<'_, str>, &str), &'static str> {
    let mut owned: Option<String> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = owned.map_or(Cow::Borrowed(&text[..i]), Cow::Owned);
                return Ok((value, &text[i + 1..]));
            }
            '\\' => {
                let unescaped = match chars.next() {
                    Some((_, '\\')) => '\\',
                    Some((_, '"')) => '"',
                    Some((_, 'n')) => '\n',
                    _ => return Err("a label value with an unknown escape"),
                };
                owned
                    .get_or_insert_with(|| text[..i].to_string())
                    .push(unescaped);
            }
            c => {
                if let Some(owned) = &mut owned {
                    owned.push(c);
                }
            }
        }
    }
    Err("a label value without its closing quote")
}

/// A sample value or timestamp: a float as Go's `ParseFloat` reads it,
/// `NaN`, `+Inf` and `-Inf` included (Rust's parser reads those too).
fn number(text: &str) -> Option<f64> {
    text.parse().ok()
}

/// One sample line (not blank, not a comment).
fn sample(line: &str) -> Result<Sample<'_>, &'static str> {
    let (name, mut rest) = metric_name(line);
    if name.is_empty() {
        return Err("no metric name");
    }
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after.trim_start_matches([' ', '\t']);
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = label_name(rest);
            if label.is_empty() {
                return Err("a label set that does not hold name=\"value\" pairs");
            }
            let after = after.trim_start_matches([' ', '\t']);
            let after = after
                .strip_prefix('=')
                .map(|a| a.trim_start_matches([' ', '\t']))
                .and_then(|a| a.strip_prefix('"'))
                .ok_or("a label without =\"value\"")?;
            let (value, after) = label_value(after)?;
            labels.push((label, value));
            let after = after.trim_start_matches([' ', '\t']);
            rest = match after.strip_prefix(',') {
                Some(after) => after.trim_start_matches([' ', '\t']),
                None if after.starts_with('}') => after,
                None => return Err("labels not separated by commas"),
            };
        }
    }
    if labels.is_empty() && !rest.starts_with([' ', '\t']) && !line.contains('{') {
        return Err("a metric name followed by neither labels nor a value");
    }
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value = fields
        .next()
        .and_then(number)
        .ok_or("a value that is not a number")?;
    // An optional timestamp, then perhaps an OpenMetrics exemplar after
    // a `#`.
    let mut after_value = fields.take_while(|&field| field != "#");
    if let Some(timestamp) = after_value.next() {
        if !number(timestamp).is_some_and(f64::is_finite) {
            return Err("a timestamp that is not a number");
        }
        if after_value.next().is_some() {
            return Err("more fields than a value and a timestamp");
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Cumulative prompt tokens looked up in the prefix cache, and found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixCounters {
    pub queries: f64,
    pub hits: f64,
}

/// Counter pairs by server, first match wins: vLLM V1 and vLLM before 0.9
/// (queries and hits; the old ones count blocks, the ratio is the same),
/// then llama.cpp, whose prompt-token counter leaves the cached ones out.
const PAIRS: [(&str, &str, bool); 3] = [
    (
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        false,
    ),
    (
        "vllm:gpu_prefix_cache_queries_total",
        "vllm:gpu_prefix_cache_hits_total",
        false,
    ),
    (
        "llamacpp:prompt_tokens_total",
        "llamacpp:prompt_tokens_cached_total",
        true,
    ),
];

/// The server's prefix-cache counters, when its metrics have a pair of
/// them that could be read in full.
pub fn prefix_counters(text: &str) -> Option<PrefixCounters> {
    let exposition = parse(text);
    exposition.warn_malformed_once();
    PAIRS.iter().find_map(|&(queries, hits, uncached_only)| {
        let hits = exposition.sum(hits)?;
        let queries = exposition.sum(queries)?;
        let queries = if uncached_only {
            queries + hits
        } else {
            queries
        };
        (queries.is_finite() && hits.is_finite()).then_some(PrefixCounters { queries, hits })
    })
}

/// The hit rate between two readings, when anything was queried and the
/// counters only went up (a server restarted between the readings starts
/// them again) and never above the queries.
pub fn rate_between(before: PrefixCounters, after: PrefixCounters) -> Option<f64> {
    let queries = after.queries - before.queries;
    let hits = after.hits - before.hits;
    let rate = hits / queries;
    (queries > 0.0 && queries.is_finite() && hits >= 0.0 && (0.0..=1.0).contains(&rate))
        .then_some(rate)
}

/// The KV cache size in tokens that vLLM states in the labels of
/// `vllm:cache_config_info`: `block_size` × `num_gpu_blocks`. None when
/// there is no such sample, a label is not a whole number (vLLM writes
/// `None` before it has sized the cache), or the product does not fit.
pub fn kv_capacity_tokens(text: &str) -> Option<u64> {
    let exposition = parse(text);
    exposition.warn_malformed_once();
    exposition
        .samples_of("vllm:cache_config_info")
        .find_map(|sample| {
            let label = |name| sample.label(name)?.trim().parse::<u64>().ok();
            label("block_size")?.checked_mul(label("num_gpu_blocks")?)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_and_llama_cpp_counters() {
        let vllm = "# TYPE vllm:prefix_cache_queries_total counter\n\
            vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 1000.0\n\
            vllm:prefix_cache_queries_created{engine=\"0\",model_name=\"m\"} 1.7e9\n\
            vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 250.0\n";
        assert_eq!(
            prefix_counters(vllm),
            Some(PrefixCounters {
                queries: 1000.0,
                hits: 250.0
            })
        );
        // llama.cpp counts uncached prompt tokens apart from cached ones.
        let llama = "llamacpp:prompt_tokens_total 88\nllamacpp:prompt_tokens_cached_total 512\n";
        assert_eq!(
            prefix_counters(llama),
            Some(PrefixCounters {
                queries: 600.0,
                hits: 512.0
            })
        );
        let before = PrefixCounters {
            queries: 100.0,
            hits: 462.0,
        };
        let rate = rate_between(before, prefix_counters(llama).unwrap()).unwrap();
        assert!((rate - 0.1).abs() < 1e-12);
        assert_eq!(prefix_counters("other_metric 1\n"), None);
    }

    #[test]
    fn a_malformed_line_is_skipped_and_spoils_only_its_own_metric() {
        let text = "vllm:prefix_cache_queries_total{engine=\"0\"} 1000\n\
            vllm:num_requests_running{model_name=\"m\" 3\n\
            3garbage line here\n\
            vllm:prefix_cache_hits_total{engine=\"0\"} 250\n\
            vllm:prefix_cache_queries_total{engine=\"1\"} 200\n\
            vllm:prefix_cache_hits_total{engine=\"1\"} 50\n";
        let exposition = parse(text);
        assert_eq!(exposition.samples.len(), 4);
        assert_eq!(exposition.malformed.len(), 2);
        assert_eq!(
            exposition.malformed[0].name,
            Some("vllm:num_requests_running")
        );
        assert_eq!(exposition.malformed[1].name, None);
        assert_eq!(
            prefix_counters(text),
            Some(PrefixCounters {
                queries: 1200.0,
                hits: 300.0
            })
        );
        // One of the hits samples unreadable: a sum of the others would be
        // a wrong rate, not a smaller one.
        let spoiled = text.replace("} 50\n", "} fifty\n");
        assert_eq!(parse(&spoiled).sum("vllm:prefix_cache_hits_total"), None);
        assert_eq!(
            parse(&spoiled).sum("vllm:prefix_cache_queries_total"),
            Some(1200.0)
        );
        assert_eq!(prefix_counters(&spoiled), None);
    }

    #[test]
    fn label_values_may_hold_braces_commas_quotes_and_newlines() {
        let text = "vllm:prefix_cache_queries_total{model_name=\"a}b,c\\\"d\\ne\\\\\",engine=\"0\"} 1000 1712345678000\n\
            vllm:prefix_cache_hits_total{model_name=\"a}b,c\\\"d\\ne\\\\\",engine=\"0\",} 250\n";
        assert_eq!(
            prefix_counters(text),
            Some(PrefixCounters {
                queries: 1000.0,
                hits: 250.0
            })
        );
        let exposition = parse(text);
        assert!(exposition.malformed.is_empty(), "{exposition:?}");
        let sample = &exposition.samples[0];
        assert_eq!(sample.label("model_name"), Some("a}b,c\"d\ne\\"));
        assert_eq!(sample.label("engine"), Some("0"));
        assert_eq!(sample.label("absent"), None);
    }

    #[test]
    fn the_text_format_in_full() {
        let text = "# HELP http_requests_total The total number of {HTTP} \"requests\".\n\
            # TYPE http_requests_total counter\r\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\r\n\
            \n\
            http_requests_total{ method = \"post\" , code=\"400\" }\t3 1395066363000\n\
            metric_without_timestamp_and_labels 12.47\n\
            something_weird{problem=\"division by zero\"} +Inf -3982045\n\
            minus_inf -Inf\n\
            not_a_number NaN\n\
            empty_labels{} 1e3\n\
            no_space_after_labels{a=\"b\"}4\n\
            with_exemplar_total{a=\"b\"} 5 # {trace_id=\"x\"} 1\n\
            # EOF\n";
        let exposition = parse(text);
        assert!(
            exposition.malformed.is_empty(),
            "{:?}",
            exposition.malformed
        );
        let values: Vec<(&str, f64)> = exposition
            .samples
            .iter()
            .map(|s| (s.name, s.value))
            .collect();
        assert_eq!(values.len(), 9);
        assert_eq!(exposition.sum("http_requests_total"), Some(1030.0));
        assert_eq!(exposition.samples[1].label("method"), Some("post"));
        assert_eq!(values[3], ("something_weird", f64::INFINITY));
        assert_eq!(values[4], ("minus_inf", f64::NEG_INFINITY));
        assert!(values[5].1.is_nan());
        assert_eq!(values[6], ("empty_labels", 1000.0));
        assert_eq!(values[7], ("no_space_after_labels", 4.0));
        assert_eq!(values[8], ("with_exemplar_total", 5.0));

        for bad in [
            "name",
            "name{a=\"b\"}",
            "name{a=\"b} 1",
            "name{a=b} 1",
            "name{a=\"b\" c=\"d\"} 1",
            "name{a=\"\\x\"} 1",
            "name{=\"b\"} 1",
            "name one",
            "name 1 two",
            "name 1 2 3",
            "name-with-dash 1",
            "{a=\"b\"} 1",
        ] {
            let exposition = parse(bad);
            assert!(exposition.samples.is_empty(), "{bad}: {exposition:?}");
            assert_eq!(exposition.malformed.len(), 1, "{bad}");
        }
    }

    #[test]
    fn the_kv_cache_size_of_vllm_from_its_cache_config_labels() {
        let text = "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n\
            # TYPE vllm:cache_config_info gauge\n\
            vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",\
            kv_cache_memory_bytes=\"None\",num_gpu_blocks=\"1000\",prefix_caching_hash_algo=\"a,b}\"} 1.0\n";
        assert_eq!(kv_capacity_tokens(text), Some(16_000));
        // Labels in another order, with spaces.
        let text = "vllm:cache_config_info{ num_gpu_blocks = \"7\" , block_size=\"32\" } 1\n";
        assert_eq!(kv_capacity_tokens(text), Some(224));
        // Before the cache is sized, or a server that says nonsense.
        for text in [
            "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"None\"} 1\n",
            "vllm:cache_config_info{block_size=\"-16\",num_gpu_blocks=\"10\"} 1\n",
            "vllm:cache_config_info{block_size=\"16\"} 1\n",
            "vllm:cache_config_info_other{block_size=\"16\",num_gpu_blocks=\"10\"} 1\n",
            "",
        ] {
            assert_eq!(kv_capacity_tokens(text), None, "{text}");
        }
        // A product that does not fit is no size, not a wrapped one.
        let huge = format!(
            "vllm:cache_config_info{{block_size=\"16\",num_gpu_blocks=\"{}\"}} 1\n",
            u64::MAX / 8
        );
        assert_eq!(kv_capacity_tokens(&huge), None);
    }

    #[test]
    fn a_rate_from_nan_or_reset_counters_is_no_rate() {
        let at = |queries, hits| PrefixCounters { queries, hits };
        assert_eq!(rate_between(at(0.0, 0.0), at(100.0, f64::NAN)), None);
        assert_eq!(rate_between(at(0.0, 0.0), at(f64::INFINITY, 1.0)), None);
        // A server restarted between the readings: its counters went back.
        assert_eq!(rate_between(at(1000.0, 900.0), at(1100.0, 10.0)), None);
        assert_eq!(rate_between(at(0.0, 0.0), at(100.0, 150.0)), None);
        assert_eq!(rate_between(at(0.0, 0.0), at(100.0, 25.0)), Some(0.25));
        assert_eq!(
            prefix_counters(
                "llamacpp:prompt_tokens_total NaN\nllamacpp:prompt_tokens_cached_total 1\n"
            ),
            None
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// A label value as the format writes it.
        fn escaped(value: &str) -> String {
            value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn any_text_parses_without_panicking(text in any::<String>()) {
                let exposition = parse(&text);
                let _ = exposition.sum("x");
                let _ = prefix_counters(&text);
                let _ = kv_capacity_tokens(&text);
            }

            #[test]
            fn lines_made_of_format_characters_parse_without_panicking(
                text in "[a-z_:{}=\",\\\\n #\t0-9.+eE-]{0,80}(\n[a-z_:{}=\",\\\\n #\t0-9.+eE-]{0,80}){0,4}"
            ) {
                let _ = parse(&text);
            }

            #[test]
            fn any_label_value_reads_back(
                values in proptest::collection::vec(any::<String>(), 1..4),
                number in any::<f64>(),
            ) {
                let labels: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(i, value)| format!("l{i}=\"{}\"", escaped(value)))
                    .collect();
                let text = format!(
                    "# TYPE m gauge\nother{{a=\"}}\"}} garbage\nm{{{}}} {number:?}\n",
                    labels.join(",")
                );
                let exposition = parse(&text);
                prop_assert_eq!(exposition.malformed.len(), 1);
                prop_assert_eq!(exposition.samples.len(), 1);
                let sample = &exposition.samples[0];
                for (i, value) in values.iter().enumerate() {
                    prop_assert_eq!(sample.label(&format!("l{i}")), Some(value.as_str()));
                }
                prop_assert!(
                    sample.value == number || (number.is_nan() && sample.value.is_nan()),
                    "{} read as {}", number, sample.value
                );
            }
        }
    }
}
