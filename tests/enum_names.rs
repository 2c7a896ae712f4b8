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

/// An enum declared with `named_enum!`.
trait Named:
    VariantArray + Copy + Into<&'static str> + Serialize + std::fmt::Display + std::fmt::Debug
{
}

impl<T> Named for T where
    T: VariantArray + Copy + Into<&'static str> + Serialize + std::fmt::Display + std::fmt::Debug
{
}

/// Every variant's text is its serde name.
fn same_as_serde<T: Named>() {
    for variant in T::VARIANTS {
        let serde = serde_json::to_value(variant).unwrap();
        let text: &'static str = (*variant).into();
        assert_eq!(serde.as_str(), Some(text), "{variant:?}");
        assert_eq!(variant.to_string(), text, "{variant:?}");
    }
}

/// An option value: named as serde writes it and as clap takes it.
fn option_value<T: Named + clap::ValueEnum>() {
    same_as_serde::<T>();
    for variant in T::VARIANTS {
        let value = variant.to_possible_value().expect("no variant is hidden");
        assert_eq!(value.get_name(), variant.to_string(), "{variant:?}");
    }
}

/// Runs `check` for each type.
macro_rules! each {
    ($check:ident: $($t:ty),*) => { $( $check::<$t>(); )* };
}

#[test]
fn enum_text_is_the_serde_name() {
    each!(same_as_serde: ErrorKind, Decision, PlanKind, PointStatus, RunStatus, Verdict, Direction, RunNoiseSource);
}

#[test]
fn option_values_are_named_as_serde_writes_and_clap_takes_them() {
    each!(option_value: TtftMetric, TokensPerReqMetric, PromptMode, ChunkTimes, Mode, ReinitStrategy, Metric);
}

#[test]
fn a_metric_and_an_error_kind_keep_their_names() {
    // Names baselines, verdicts and rows already carry.
    assert_eq!(Metric::InputThroughput.name(), "input_throughput");
    assert_eq!(Metric::TtftP95.to_string(), "ttft_p95");
    assert_eq!(ErrorKind::Http5xx.name(), "http_5xx");
    assert_eq!(Decision::PlateauRampDown.name(), "PLATEAU_RAMP_DOWN");
}
