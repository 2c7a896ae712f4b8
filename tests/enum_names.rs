//! One way enums become text: strum's `Display` and `&'static str`, which
//! must be the names serde writes to files (and clap takes on the command
//! line), so a report, a message and a file never spell a value two ways.

use cacherate::analysis::{Direction, Metric, RunNoiseSource, Verdict};
use cacherate::record::ErrorKind;
use cacherate::settings::{
    ChunkTimes, Mode, PromptMode, ReinitStrategy, TokensPerReqMetric, TtftMetric,
};
use cacherate::store::{Decision, PlanKind, PointStatus, RunStatus};
use serde::Serialize;
use strum::VariantArray;

/// Every variant's text is its serde name.
fn same_as_serde<T>()
where
    T: VariantArray + Copy + Into<&'static str> + Serialize + std::fmt::Display + std::fmt::Debug,
{
    for variant in T::VARIANTS {
        let serde = serde_json::to_value(variant).unwrap();
        let text: &'static str = (*variant).into();
        assert_eq!(serde.as_str(), Some(text), "{variant:?}");
        assert_eq!(variant.to_string(), text, "{variant:?}");
    }
}

/// ... and the name clap takes.
fn same_as_clap<T>()
where
    T: VariantArray + clap::ValueEnum + std::fmt::Display + std::fmt::Debug + 'static,
{
    for variant in T::VARIANTS {
        let value = variant.to_possible_value().expect("no variant is hidden");
        assert_eq!(value.get_name(), variant.to_string(), "{variant:?}");
    }
}

#[test]
fn enum_text_is_the_serde_name() {
    same_as_serde::<ErrorKind>();
    same_as_serde::<Decision>();
    same_as_serde::<PlanKind>();
    same_as_serde::<PointStatus>();
    same_as_serde::<RunStatus>();
    same_as_serde::<Verdict>();
    same_as_serde::<Metric>();
    same_as_serde::<Direction>();
    same_as_serde::<RunNoiseSource>();
    same_as_serde::<TtftMetric>();
    same_as_serde::<TokensPerReqMetric>();
    same_as_serde::<PromptMode>();
    same_as_serde::<ChunkTimes>();
    same_as_serde::<Mode>();
    same_as_serde::<ReinitStrategy>();
}

#[test]
fn option_values_are_named_as_clap_takes_them() {
    same_as_clap::<TtftMetric>();
    same_as_clap::<TokensPerReqMetric>();
    same_as_clap::<PromptMode>();
    same_as_clap::<ChunkTimes>();
    same_as_clap::<Mode>();
    same_as_clap::<ReinitStrategy>();
}

#[test]
fn a_metric_and_an_error_kind_keep_their_names() {
    // Names baselines, verdicts and rows already carry.
    assert_eq!(Metric::InputThroughput.name(), "input_throughput");
    assert_eq!(Metric::TtftP95.to_string(), "ttft_p95");
    assert_eq!(ErrorKind::Http5xx.name(), "http_5xx");
    assert_eq!(Decision::PlateauRampDown.name(), "PLATEAU_RAMP_DOWN");
}
