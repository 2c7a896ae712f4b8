//! [`RunSettings`]: the options of one `cacherate run`, resolved in one
//! place from the command line, the environment, the profiles and the
//! defaults.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::RunArgs;
use crate::error::{Error, Result};

use super::layers;
use super::load::{LoadOptions, ReadLoads, mode_and_load};
use super::options::{
    ChunkTimes, FixedLoadSpec, FlushCache, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric,
    TtftMetric,
};
use super::profile::{self, Options};
use super::serve::ServeSettings;
use super::url::{normalize_endpoint, serialize_masked, serialize_masked_option};

/// Fully resolved options of one `cacherate run`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    /// Base URLs without a trailing `/` or `/v1`; empty means the embedded
    /// simulator. A `user:password@` in them is sent as basic auth and
    /// written with the password masked.
    #[serde(serialize_with = "serialize_masked")]
    pub endpoints: Vec<String>,
    /// The server `--serve` starts and stops (at `endpoints[0]`), if any.
    pub serve: Option<ServeSettings>,
    pub context_sizes: Vec<u64>,
    pub working_set_size: u64,
    pub output_tokens: u32,
    pub max_ttft: f64,
    pub ttft_metric: TtftMetric,
    pub test_duration: f64,
    pub ramp_duration: f64,
    pub num_retries: u32,
    pub start_concurrency: u32,
    pub concurrency_increment: u32,
    pub max_concurrency: u32,
    pub init_concurrency: u32,
    pub cache_hit_rates: Vec<u32>,
    pub chunk_size: u64,
    pub reinit_strategy: ReinitStrategy,
    pub random_working_set_selection: bool,
    pub output_dir: PathBuf,
    pub tokenizer: Option<String>,
    /// `None`: a seed is drawn at the start and recorded.
    pub seed: Option<u64>,
    pub kv_cache_quantization: u8,
    pub strict_time_window: bool,
    pub skip_graphs: bool,
    pub chunk_times: ChunkTimes,
    pub model: Option<String>,
    #[serde(skip)]
    pub api_key: Option<String>,
    pub min_tokens_per_req: Option<f64>,
    pub tokens_per_req_metric: TokensPerReqMetric,
    pub request_timeout: f64,
    pub max_error_rate: f64,
    /// Connection-level failures in a row that stop a point (0: never).
    pub circuit_breaker_failures: u32,
    /// Seconds without a success before they may.
    pub circuit_breaker_window: f64,
    pub sim_time_scale: f64,
    pub num_layers: Option<u32>,
    pub num_kv_heads: Option<u32>,
    pub head_dim: Option<u32>,
    /// Percentage points the achieved cache-hit rate may miss the target by
    /// before the point is flagged; `None`: max(0.5, one chunk / context).
    pub max_cache_rate_gap: Option<f64>,
    /// Where to read the server's prefix-cache counters, if anywhere.
    #[serde(serialize_with = "serialize_masked_option")]
    pub metrics_url: Option<String>,
    pub flush_cache: FlushCache,
    pub prompt_mode: PromptMode,
    pub mode: Mode,
    pub fixed_load: Option<FixedLoadSpec>,
    /// The file --concurrency-from named.
    pub concurrency_from: Option<PathBuf>,
    /// Share of each measured phase, at its start, not counted.
    pub warmup_fraction: f64,
    /// Seconds of each sample phase.
    pub sample_duration: f64,
    /// The request cycles a sample's window spans at least, and the
    /// requests it counts (`stats::SampleSizing`).
    pub min_sample_cycles: f64,
    pub min_sample_requests: u64,
    /// Sample phases are lengthened to those (else a short one
    /// is reported).
    pub lengthen_samples: bool,
    /// Sustained mode: seconds between the controller's decisions.
    pub assessment_period: f64,
    /// `(context, rate, samples)`: finished points to extend with more
    /// sample phases until they have that many (the gate's extra samples
    /// at inconclusive points). Not an option of `run`.
    pub sample_targets: Vec<(u64, u32, u32)>,
    pub profile: Option<String>,
    pub force_restart: bool,
    pub verbose: bool,
    pub quiet: bool,
}

pub(super) fn required<T>(value: Option<T>, option: &str) -> Result<T> {
    value.ok_or_else(|| {
        Error::Usage(format!(
            "{option} is required: give it on the command line, or use a profile that sets \
             it (--profile quick)"
        ))
    })
}

impl RunSettings {
    /// Resolves `args` over the environment, the profile and the defaults.
    /// `config_dir` is where `cacherate.toml` is looked for when `--config`
    /// is not given. For a command line that names no file of loads
    /// (`--concurrency-from`); [`RunSettings::resolve_with`] takes one.
    pub fn resolve(args: RunArgs, config_dir: &Path) -> Result<RunSettings> {
        RunSettings::resolve_with(args, config_dir, &super::load::no_file_of_loads)
    }

    /// [`RunSettings::resolve`], with `read` giving the loads of the file
    /// `--concurrency-from` names.
    pub fn resolve_with(args: RunArgs, config_dir: &Path, read: ReadLoads) -> Result<RunSettings> {
        let profiles = profile::load(&args.profiles, config_dir)?;
        RunSettings::from_layers(&profiles, args, 0, read)
    }

    /// `args` over the `profiles`, with at least `min_samples` sample
    /// phases a point (a comparison refuses fewer, so a gate or a
    /// calibration takes them).
    pub(super) fn from_layers(
        profiles: &Options,
        args: RunArgs,
        min_samples: usize,
        read: ReadLoads,
    ) -> Result<RunSettings> {
        let o = profiles.clone().over(layers::run(&args));
        let mut cache_hit_rates = required(o.cache_hit_rates.clone(), "--cache-hit-rates")?;
        cache_hit_rates.sort_unstable();
        cache_hit_rates.dedup();
        let context_sizes = required(o.context_sizes.clone(), "--context-sizes")?;
        let points: Vec<(u64, u32)> = context_sizes
            .iter()
            .flat_map(|&c| cache_hit_rates.iter().map(move |&r| (c, r)))
            .collect();
        let (mode, fixed_load) = mode_and_load(
            LoadOptions {
                mode: o.mode,
                levels: o.fixed_concurrency_levels.clone(),
                concurrency_from: o.concurrency_from.clone(),
            },
            &points,
            read,
        )?;
        let mut settings = RunSettings::of(o, args, mode, fixed_load)?;
        settings.context_sizes = context_sizes;
        settings.cache_hit_rates = cache_hit_rates;
        let at_least = u32::try_from(min_samples).unwrap_or(u32::MAX);
        settings.num_retries = settings.num_retries.max(at_least);
        settings.validate()?;
        Ok(settings)
    }

    /// The settings of the layered options `o` (the points and the load
    /// decided by the caller).
    fn of(
        o: Options,
        args: RunArgs,
        mode: Mode,
        fixed_load: Option<FixedLoadSpec>,
    ) -> Result<RunSettings> {
        let mut endpoints = o
            .api_endpoint
            .unwrap_or_default()
            .iter()
            .map(|e| normalize_endpoint(e))
            .collect::<Result<Vec<_>>>()?;
        let serve = super::serve::resolve(o.serve, o.serve_timeout, &mut endpoints)?;
        Ok(RunSettings {
            endpoints,
            serve,
            context_sizes: Vec::new(),
            working_set_size: required(o.working_set_size, "--working-set-size")?,
            output_tokens: required(o.output_tokens, "--output-tokens")?,
            max_ttft: required(o.max_ttft, "--max-ttft")?,
            ttft_metric: required(o.ttft_metric, "--ttft-metric")?,
            test_duration: required(o.test_duration, "--test-duration")?,
            ramp_duration: required(o.ramp_duration, "--ramp-duration")?,
            num_retries: required(o.num_retries, "--num-retries")?,
            start_concurrency: required(o.start_concurrency, "--start-concurrency")?,
            concurrency_increment: required(o.concurrency_increment, "--concurrency-increment")?,
            max_concurrency: required(o.max_concurrency, "--max-concurrency")?,
            init_concurrency: required(o.init_concurrency, "--init-concurrency")?,
            cache_hit_rates: Vec::new(),
            chunk_size: required(o.chunk_size, "--chunk-size")?,
            reinit_strategy: required(o.reinit_strategy, "--reinit-strategy")?,
            random_working_set_selection: o.random_working_set_selection.unwrap_or(false),
            output_dir: required(o.output_dir, "--output-dir")?,
            tokenizer: o.tokenizer,
            seed: o.seed,
            kv_cache_quantization: required(o.kv_cache_quantization, "--kv-cache-quantization")?,
            strict_time_window: o.strict_time_window.unwrap_or(false),
            skip_graphs: o.skip_graphs.unwrap_or(false),
            chunk_times: o.chunk_times.unwrap_or(ChunkTimes::All),
            model: o.model,
            api_key: args.api_key.filter(|key| !key.is_empty()),
            min_tokens_per_req: o.min_tokens_per_req,
            tokens_per_req_metric: required(o.tokens_per_req_metric, "--tokens-per-req-metric")?,
            request_timeout: required(o.request_timeout, "--request-timeout")?,
            max_error_rate: required(o.max_error_rate, "--max-error-rate")?,
            circuit_breaker_failures: required(
                o.circuit_breaker_failures,
                "--circuit-breaker-failures",
            )?,
            circuit_breaker_window: required(o.circuit_breaker_window, "--circuit-breaker-window")?,
            sim_time_scale: required(o.sim_time_scale, "--sim-time-scale")?,
            num_layers: o.num_layers,
            num_kv_heads: o.num_kv_heads,
            head_dim: o.head_dim,
            max_cache_rate_gap: o.max_cache_rate_gap,
            metrics_url: o.metrics_url.filter(|url| url != "none"),
            flush_cache: FlushCache::parse(o.flush_cache.as_deref().unwrap_or("none"))?,
            prompt_mode: o.prompt_mode.unwrap_or(PromptMode::Tokens),
            mode,
            fixed_load,
            concurrency_from: o.concurrency_from,
            warmup_fraction: required(o.warmup_fraction, "--warmup-fraction")?,
            sample_duration: match o.sample_duration {
                Some(seconds) => seconds,
                None => required(o.ramp_duration, "--ramp-duration")?,
            },
            min_sample_cycles: required(o.min_sample_cycles, "--min-sample-cycles")?,
            min_sample_requests: required(o.min_sample_requests, "--min-sample-requests")?,
            lengthen_samples: required(o.lengthen_samples, "--lengthen-samples")?,
            assessment_period: required(o.assessment_period, "--assessment-period")?,
            sample_targets: Vec::new(),
            profile: args.profiles.profile,
            force_restart: args.force_restart,
            verbose: args.verbose,
            quiet: args.quiet,
        })
    }

    /// The allowed gap, in percentage points, between the effective
    /// target and the achieved cache-hit rate at a context: the option, or
    /// max(0.5, one server KV block as a share of the context) — a server
    /// never reuses the block that holds a prompt's last token.
    pub fn cache_rate_gap(&self, context: u64, server_block_tokens: u64) -> f64 {
        self.max_cache_rate_gap.unwrap_or_else(|| {
            let rounded = crate::kvsize::round_up(context, self.chunk_size) as f64;
            (100.0 * server_block_tokens as f64 / rounded).max(0.5)
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::settings::CONFIG_FILE;

    pub(in crate::settings) fn resolve(args: &[&str], dir: &Path) -> Result<RunSettings> {
        let mut argv = vec!["cacherate", "run"];
        argv.extend_from_slice(args);
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("run command");
        };
        RunSettings::resolve(*args, dir)
    }

    #[test]
    fn seed_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &["--context-sizes", "8000", "--working-set-size", "100000"],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.output_tokens, 256);
        assert_eq!(s.max_ttft, 2.0);
        assert_eq!(s.ttft_metric, TtftMetric::P95);
        assert_eq!(s.test_duration, 300.0);
        assert_eq!(s.ramp_duration, 60.0);
        assert_eq!(s.num_retries, 3);
        assert_eq!((s.start_concurrency, s.concurrency_increment), (2, 2));
        assert_eq!((s.max_concurrency, s.init_concurrency), (1000, 16));
        assert_eq!(s.cache_hit_rates, (0..=100).step_by(5).collect::<Vec<_>>());
        assert_eq!(s.chunk_size, 256);
        assert_eq!(s.reinit_strategy, ReinitStrategy::Once);
        assert_eq!(s.output_dir, PathBuf::from("./output"));
        assert_eq!(s.kv_cache_quantization, 2);
        assert!(!s.strict_time_window && !s.random_working_set_selection && !s.skip_graphs);
        assert!(s.endpoints.is_empty() && s.seed.is_none() && s.tokenizer.is_none());
    }

    #[test]
    fn command_line_beats_user_profile_beats_builtin_profile_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[defaults]\nchunk-size = 128\n[profile.quick]\nmax-ttft = 0.5\noutput-tokens = 8\n",
        )
        .unwrap();
        let s = resolve(&["--profile", "quick", "--output-tokens", "16"], dir.path()).unwrap();
        assert_eq!(s.output_tokens, 16, "command line wins");
        assert_eq!(s.max_ttft, 0.5, "user profile over built-in profile");
        assert_eq!(s.ramp_duration, 3.0, "built-in profile over defaults");
        assert_eq!(s.chunk_size, 128, "user defaults over built-in defaults");
        assert_eq!(s.num_retries, 3);
        assert_eq!(s.cache_hit_rates, vec![0, 50, 100]);
    }

    #[test]
    fn serve_comes_from_a_profile_unless_the_command_line_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[profile.served]\nserve = \"exec vllm serve m --port {port} --api-key sk-1\"\n\
             serve-timeout = 900.0\napi-endpoint = [\"http://127.0.0.1:9000\"]\n\
             context-sizes = [512]\nworking-set-size = 1024\n",
        )
        .unwrap();
        let s = resolve(&["--profile", "quick"], dir.path()).unwrap();
        assert_eq!(s.serve, None);
        let s = resolve(&["--profile", "served"], dir.path()).unwrap();
        let serve = s.serve.unwrap();
        assert_eq!(
            serve.command,
            "exec vllm serve m --port 9000 --api-key sk-1"
        );
        assert_eq!(serve.timeout, 900.0);
        assert_eq!(serve.shown(), "exec vllm serve m --port 9000 --api-key ***");
        let s = resolve(
            &[
                "--profile",
                "served",
                "--serve",
                "sim --listen {host}:{port}",
                "--serve-timeout",
                "5",
            ],
            dir.path(),
        )
        .unwrap();
        let serve = s.serve.unwrap();
        assert_eq!(serve.command, "sim --listen 127.0.0.1:9000");
        assert_eq!(serve.timeout, 5.0);
        // Without an endpoint it listens where vLLM does by default; the
        // secret never reaches what the settings write.
        let s = resolve(
            &["--profile", "quick", "--serve", "x --api-key sk-2"],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.endpoints, [crate::settings::DEFAULT_SERVE_ENDPOINT]);
        assert_eq!(s.serve.as_ref().unwrap().timeout, 600.0);
        let written = serde_json::to_string(&s).unwrap();
        assert!(!written.contains("sk-2"), "{written}");
    }

    #[test]
    fn a_no_flag_turns_off_what_a_profile_turns_on() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[profile.strict]\ncontext-sizes = [512]\nworking-set-size = 1024\n\
             strict-time-window = true\n",
        )
        .unwrap();
        let s = resolve(
            &["--profile", "strict", "--no-strict-time-window"],
            dir.path(),
        )
        .unwrap();
        assert!(!s.strict_time_window);
        let s = resolve(&["--profile", "strict"], dir.path()).unwrap();
        assert!(s.strict_time_window);
    }

    #[test]
    fn unknown_profile_and_bad_file_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(&["--profile", "nope"], dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("known profiles: full, quick"),
            "{error}"
        );
        std::fs::write(dir.path().join(CONFIG_FILE), "[profile.x]\nmax-ttf = 1\n").unwrap();
        let error = resolve(&["--profile", "x"], dir.path()).unwrap_err();
        assert!(error.to_string().contains("max-ttf"), "{error}");
        assert_eq!(error.exit_code(), crate::exit::USAGE);
    }

    #[test]
    fn rates_are_sorted_and_fractional_durations_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &[
                "--profile",
                "quick",
                "--cache-hit-rates",
                "100",
                "0",
                "50",
                "--ramp-duration",
                "0.5",
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.cache_hit_rates, vec![0, 50, 100]);
        assert_eq!(s.ramp_duration, 0.5);
    }

    #[test]
    fn modes_take_their_load_and_refuse_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let quick = |extra: &[&str]| {
            let mut args = vec!["--profile", "quick"];
            args.extend_from_slice(extra);
            resolve(&args, dir.path())
        };
        assert_eq!(quick(&[]).unwrap().mode, Mode::Adaptive);
        assert_eq!(quick(&[]).unwrap().sample_duration, 3.0, "--ramp-duration");
        let s = quick(&[
            "--mode",
            "fixed",
            "--fixed-concurrency-levels",
            "16",
            "4",
            "4",
        ])
        .unwrap();
        assert_eq!(s.fixed_load, Some(FixedLoadSpec::Levels(vec![4, 16])));
        let s = quick(&["--mode", "sustained", "--assessment-period", "5"]).unwrap();
        assert_eq!((s.mode, s.assessment_period), (Mode::Sustained, 5.0));
        for (extra, says) in [
            (
                &["--mode", "sustained", "--assessment-period", "20"][..],
                "shorter than one period",
            ),
            (
                &["--mode", "sustained", "--fixed-concurrency-levels", "4"][..],
                "go with --mode fixed",
            ),
            (&["--assessment-period", "0"][..], "above 0"),
            (&["--mode", "fixed"][..], "needs the load"),
            (
                &["--mode", "fixed", "--fixed-concurrency-levels", "0"][..],
                "above 0",
            ),
            (
                &[
                    "--mode",
                    "fixed",
                    "--fixed-concurrency-levels",
                    "4",
                    "--num-retries",
                    "0",
                ][..],
                "at least 1",
            ),
            (&["--warmup-fraction", "0.95"][..], "--warmup-fraction"),
            (&["--sample-duration", "0"][..], "--sample-duration"),
        ] {
            let error = quick(extra).unwrap_err();
            assert_eq!(error.exit_code(), crate::exit::USAGE);
            assert!(error.to_string().contains(says), "{extra:?}: {error}");
        }
    }

    /// A load can only mean fixed mode: it implies `--mode fixed` (it was
    /// refused without it), and an explicit other mode is refused saying why.
    #[test]
    fn a_fixed_load_implies_fixed_mode() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &["--profile", "quick", "--fixed-concurrency-levels", "8", "4"],
            dir.path(),
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Fixed);
        assert_eq!(s.fixed_load, Some(FixedLoadSpec::Levels(vec![4, 8])));
        let loads = |_: &Path| Ok(vec![(2048, 0, 3), (2048, 50, 5), (2048, 100, 9)]);
        let Command::Run(args) = Cli::try_parse_from([
            "cacherate",
            "run",
            "--profile",
            "quick",
            "--concurrency-from",
            "earlier/results.json",
        ])
        .unwrap()
        .command
        else {
            unreachable!()
        };
        let s = RunSettings::resolve_with(*args, dir.path(), &loads).unwrap();
        assert_eq!(s.mode, Mode::Fixed);
        assert_eq!(
            s.fixed_load,
            Some(FixedLoadSpec::PerPoint(loads(Path::new("")).unwrap()))
        );
        for mode in ["adaptive", "sustained"] {
            let error = resolve(
                &[
                    "--profile",
                    "quick",
                    "--mode",
                    mode,
                    "--fixed-concurrency-levels",
                    "4",
                ],
                dir.path(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                error.contains(&format!("--mode {mode} chooses its own load")),
                "{error}"
            );
        }
    }
}
