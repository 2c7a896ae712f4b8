//! Reading a server's own prefix-cache counters from its Prometheus
//! `/metrics`, to set the server's view of the cache-hit rate beside the
//! client's.

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

/// The sum of every sample of `name` (all label sets), if any.
fn sum(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: a label set or the value follows.
        let rest = match rest.chars().next() {
            Some('{') => &rest[rest.find('}')? + 1..],
            Some(' ') => rest,
            _ => continue,
        };
        if let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *total.get_or_insert(0.0) += value;
        }
    }
    total
}

pub fn prefix_counters(text: &str) -> Option<PrefixCounters> {
    PAIRS.iter().find_map(|&(queries, hits, uncached_only)| {
        let hits = sum(text, hits)?;
        let queries = sum(text, queries)?;
        Some(PrefixCounters {
            queries: if uncached_only {
                queries + hits
            } else {
                queries
            },
            hits,
        })
    })
}

/// The hit rate between two readings, when anything was queried.
pub fn rate_between(before: PrefixCounters, after: PrefixCounters) -> Option<f64> {
    let queries = after.queries - before.queries;
    (queries > 0.0).then(|| (after.hits - before.hits) / queries)
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
}
