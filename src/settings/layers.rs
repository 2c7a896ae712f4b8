//! The command line and the environment as one layer of [`Options`] each,
//! over the profiles. Every argument struct is destructured whole (no
//! `..`): an option added to one that is not layered here, nor named as
//! not a profile key, does not compile.

use crate::cli::{GateArgs, ProfileArgs, RunArgs, RunOptionArgs, VerdictArgs};

use super::profile::Options;

/// A flag, its `--no-` form, or neither (then a profile decides).
fn flag(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// `cacherate run`'s profile-settable options as given.
pub(super) fn run(args: &RunArgs) -> Options {
    let RunArgs {
        api_endpoint,
        serve,
        serve_timeout,
        model,
        // Never from a profile: a secret, and the choice of profile itself.
        api_key: _,
        tokenizer,
        request_timeout,
        profiles: ProfileArgs {
            profile: _,
            config: _,
        },
        // What this invocation does, not what a sweep is.
        force_restart: _,
        verbose: _,
        quiet: _,
        options,
    } = args;
    Options {
        api_endpoint: api_endpoint.clone(),
        serve: serve.clone(),
        serve_timeout: *serve_timeout,
        model: model.clone(),
        tokenizer: tokenizer.clone(),
        request_timeout: *request_timeout,
        ..run_options(options)
    }
}

/// The [`Options`] of an argument struct whose fields are all profile
/// keys: `same` (one name and type in both), and `on / off` flag pairs
/// (`--x`, `--no-x`). The pattern names every field, so a field left out of
/// the list does not compile ("pattern requires `..` due to inaccessible
/// fields", pointing at the list: add the field to it).
macro_rules! layer {
    ($args:expr => $ty:ident { $($same:ident),* $(,)? ; $($on:ident / $off:ident),* $(,)? }) => {{
        let $ty { $($same,)* $($on, $off,)* } = $args;
        Options {
            $($same,)*
            $($on: flag($on, $off),)*
            ..Options::default()
        }
    }};
}

fn run_options(options: &RunOptionArgs) -> Options {
    layer!(options.clone() => RunOptionArgs {
        context_sizes, working_set_size, output_tokens, cache_hit_rates, chunk_size,
        reinit_strategy, prompt_mode, seed, max_ttft, ttft_metric, min_tokens_per_req,
        tokens_per_req_metric, max_error_rate, circuit_breaker_failures, circuit_breaker_window,
        test_duration, ramp_duration, num_retries, sample_duration, warmup_fraction,
        min_sample_cycles, min_sample_requests, mode,
        assessment_period, fixed_concurrency_levels, concurrency_from, start_concurrency,
        concurrency_increment, max_concurrency, init_concurrency, output_dir, chunk_times,
        kv_cache_quantization, num_layers, num_kv_heads, head_dim, max_cache_rate_gap,
        metrics_url, flush_cache, sim_time_scale;
        random_working_set_selection / no_random_working_set_selection,
        strict_time_window / no_strict_time_window,
        skip_graphs / no_skip_graphs,
        lengthen_samples / no_lengthen_samples,
    })
}

/// The verdict's options as given (`compare`, `gate`, `calibrate`).
pub(super) fn verdict(args: &VerdictArgs) -> Options {
    layer!(args.clone() => VerdictArgs {
        confidence, tolerance_throughput, tolerance_ttft_p50, tolerance_ttft_p95,
        run_noise_floor, min_samples, gate_metrics;
        fail_on_inconclusive / no_fail_on_inconclusive,
    })
}

/// The gate's own options as given.
pub(super) fn gate(args: &GateArgs) -> Options {
    let GateArgs {
        // What to gate against and how: not profile keys.
        baseline: _,
        search_peak: _,
        max_extra_samples,
        // Layered by [`run`] and [`verdict`].
        run: _,
        verdict: _,
    } = args;
    Options {
        max_extra_samples: *max_extra_samples,
        ..Options::default()
    }
}
