//! `/metrics`: the engine's state in Prometheus text format, under the names
//! vLLM's V1 engine exports (with its `model_name` and `engine` labels), plus
//! the simulator's own second-tier counters.

use std::fmt::Write;

use super::config::SimConfig;
use super::engine::EngineSnapshot;

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

struct Family<'a> {
    out: &'a mut String,
    labels: String,
}

impl Family<'_> {
    fn metric(&mut self, kind: Kind, name: &str, help: &str, value: f64) {
        let kind_name = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        // `{:?}` prints floats as Python's prometheus_client does: `3.0`.
        let _ = write!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} {kind_name}\n{name}{{{}}} {value:?}\n",
            self.labels
        );
    }
}

/// One sample: its type, name, help text and value.
type Sample = (Kind, &'static str, &'static str, f64);

/// The engine's gauges and counters under vLLM's V1 names.
fn vllm_samples(stats: &EngineSnapshot) -> Vec<Sample> {
    use Kind::{Counter, Gauge};
    vec![
        (
            Gauge,
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            stats.running as f64,
        ),
        (
            Gauge,
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            stats.waiting as f64,
        ),
        (
            Gauge,
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            stats.kv_usage,
        ),
        (
            Counter,
            "vllm:prefix_cache_queries_total",
            "Prefix cache queries, in terms of number of queried tokens.",
            stats.prefix_cache_queries as f64,
        ),
        (
            Counter,
            "vllm:prefix_cache_hits_total",
            "Prefix cache hits, in terms of number of cached tokens.",
            stats.prefix_cache_hits as f64,
        ),
        (
            Counter,
            "vllm:prompt_tokens_total",
            "Number of prefill tokens processed.",
            stats.prompt_tokens as f64,
        ),
        (
            Counter,
            "vllm:generation_tokens_total",
            "Number of generation tokens processed.",
            stats.generation_tokens as f64,
        ),
    ]
}

/// The simulator's own gauges and counters (its second tier, its modelled
/// time).
fn sim_samples(stats: &EngineSnapshot) -> Vec<Sample> {
    use Kind::{Counter, Gauge};
    vec![
        (
            Counter,
            "cacherate_sim:finished_requests_total",
            "Requests that generated all their tokens.",
            stats.finished_requests as f64,
        ),
        (
            Counter,
            "cacherate_sim:aborted_requests_total",
            "Requests whose client went away before they finished.",
            stats.aborted_requests as f64,
        ),
        (
            Gauge,
            "cacherate_sim:cached_blocks",
            "First-tier KV blocks holding a cached prefix block, in use or not.",
            stats.cached_blocks as f64,
        ),
        (
            Counter,
            "cacherate_sim:evicted_blocks_total",
            "First-tier KV blocks evicted.",
            stats.kv.evicted_blocks as f64,
        ),
        (
            Gauge,
            "cacherate_sim:offload_blocks",
            "Blocks held in the second tier.",
            stats.offloaded_blocks as f64,
        ),
        (
            Counter,
            "cacherate_sim:offload_hits_total",
            "Prefix cache hits served from the second tier, in tokens.",
            stats.offload_hits as f64,
        ),
        (
            Counter,
            "cacherate_sim:busy_seconds_total",
            "Simulated seconds of engine steps: the modelled time, whatever the host's load.",
            stats.busy_seconds,
        ),
        (
            Counter,
            "cacherate_sim:offload_dropped_blocks_total",
            "Blocks dropped from the full second tier.",
            stats.kv.offload_dropped_blocks as f64,
        ),
    ]
}

/// Renders the exposition text.
pub fn render(config: &SimConfig, stats: &EngineSnapshot) -> String {
    let mut out = String::new();
    let model = config.model.replace('\\', "\\\\").replace('"', "\\\"");
    let labels = format!("engine=\"0\",model_name=\"{model}\"");
    let mut family = Family {
        out: &mut out,
        labels: labels.clone(),
    };
    for (kind, name, help, value) in vllm_samples(stats).into_iter().chain(sim_samples(stats)) {
        family.metric(kind, name, help, value);
    }
    // vLLM publishes its cache configuration as labels of a constant gauge;
    // clients read the first tier's size from it.
    let _ = write!(
        out,
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n\
         # TYPE vllm:cache_config_info gauge\n\
         vllm:cache_config_info{{block_size=\"{}\",enable_prefix_caching=\"True\",engine=\"0\",\
         num_cpu_blocks=\"{}\",num_gpu_blocks=\"{}\"}} 1.0\n",
        config.block_size,
        config.offload_capacity_blocks(),
        config.kv_capacity_blocks()
    );
    let capacity = config.kv_capacity_blocks() * config.block_size;
    Family {
        out: &mut out,
        labels,
    }
    .metric(
        Kind::Gauge,
        "cacherate_sim:kv_capacity_tokens",
        "First-tier KV capacity in tokens.",
        capacity as f64,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_vllm_names_with_labels() {
        let stats = EngineSnapshot {
            prefix_cache_queries: 1000,
            prefix_cache_hits: 512,
            running: 3,
            ..EngineSnapshot::default()
        };
        let text = render(&SimConfig::default(), &stats);
        assert!(text.contains(
            "# TYPE vllm:prefix_cache_queries_total counter\n\
             vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"cacherate-sim\"} 1000.0\n"
        ));
        assert!(text.contains(
            "vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"cacherate-sim\"} 512.0\n"
        ));
        assert!(text.contains(
            "vllm:num_requests_running{engine=\"0\",model_name=\"cacherate-sim\"} 3.0\n"
        ));
    }
}
