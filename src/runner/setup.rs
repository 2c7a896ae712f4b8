//! Everything before the first point of a run.

use crate::settings::{Mode, RunSettings};
use crate::store::Workload;

/// The options a resumed run must share with the stored one.
pub fn workload(settings: &RunSettings, model: &str, seed: u64) -> Workload {
    let target = if settings.endpoints.is_empty() {
        vec![format!(
            "embedded simulator, --sim-time-scale {}",
            settings.sim_time_scale
        )]
    } else {
        settings
            .endpoints
            .iter()
            .map(|url| crate::settings::mask_password(url))
            .collect()
    };
    Workload {
        target,
        model: model.to_string(),
        prompt_mode: settings.prompt_mode,
        tokenizer: settings.tokenizer.clone(),
        working_set_size: settings.working_set_size,
        output_tokens: settings.output_tokens,
        max_ttft: settings.max_ttft,
        ttft_metric: settings.ttft_metric,
        test_duration: settings.test_duration,
        ramp_duration: settings.ramp_duration,
        num_retries: settings.num_retries,
        start_concurrency: settings.start_concurrency,
        concurrency_increment: settings.concurrency_increment,
        max_concurrency: settings.max_concurrency,
        init_concurrency: settings.init_concurrency,
        cache_hit_rates: settings.cache_hit_rates.clone(),
        chunk_size: settings.chunk_size,
        reinit_strategy: settings.reinit_strategy,
        random_working_set_selection: settings.random_working_set_selection,
        seed,
        strict_time_window: settings.strict_time_window,
        min_tokens_per_req: settings.min_tokens_per_req,
        tokens_per_req_metric: settings.tokens_per_req_metric,
        max_error_rate: settings.max_error_rate,
        mode: settings.mode,
        fixed_load: settings.fixed_load.clone(),
        warmup_fraction: settings.warmup_fraction,
        sample_duration: settings.sample_duration,
        assessment_period: (settings.mode == Mode::Sustained).then_some(settings.assessment_period),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn quick(extra: &[&str]) -> RunSettings {
        let mut argv = vec!["cacherate", "run", "--profile", "quick"];
        argv.extend_from_slice(extra);
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("run command");
        };
        let dir = tempfile::tempdir().unwrap();
        RunSettings::resolve(*args, dir.path()).unwrap()
    }

    #[test]
    fn only_sustained_mode_stores_its_assessment_period() {
        let s = quick(&["--mode", "sustained", "--assessment-period", "5"]);
        assert_eq!(workload(&s, "m", 1).assessment_period, Some(5.0));
        assert_eq!(workload(&quick(&[]), "m", 1).assessment_period, None);
    }
}
