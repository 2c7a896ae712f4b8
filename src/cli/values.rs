//! The values of the options that take one of a few choices (clap's
//! `ValueEnum`s, also read from profiles and stored with a run), and fixed
//! mode's load. Plain values with no logic: every layer may use them.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

crate::names::named_enum! {
    "lowercase",
    /// Which TTFT statistic of a phase is held against `--max-ttft`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
    pub enum TtftMetric {
        Max,
        Avg,
        P95,
    }
}

crate::names::named_enum! {
    "lowercase",
    /// Which per-request output-rate statistic is held against
    /// `--min-tokens-per-req`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
    pub enum TokensPerReqMetric {
        Avg,
        P5,
        P10,
    }
}

crate::names::named_enum! {
    "lowercase",
    /// How prompts are sent.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
    pub enum PromptMode {
        /// Token ids to /v1/completions: exact prefixes.
        Tokens,
        /// Text to /v1/completions; the server re-tokenises it.
        Text,
        /// Text as a user message to /v1/chat/completions, through the chat
        /// template.
        Chat,
        /// Token ids, or text when the server refuses token ids.
        Auto,
    }
}

crate::names::named_enum! {
    "lowercase",
    /// What a `detailed_results` row keeps of its stream's chunk times.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
    pub enum ChunkTimes {
        /// Every chunk's time (about 6 bytes a chunk).
        All,
        /// Only the chunk count, the first and last times (TTFT, TTLT) and the
        /// longest gap; the figures are computed from every chunk before the
        /// row is written either way.
        Summary,
    }
}

crate::names::named_enum! {
    "lowercase",
    /// How a point's load is chosen (the seed's `--mode`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
    pub enum Mode {
        /// Ramp concurrency to the peak under the thresholds, then sample it.
        Adaptive,
        /// Measure the levels of --fixed-concurrency-levels (or of
        /// --concurrency-from) without a ramp.
        Fixed,
        /// One continuous load per point whose concurrency a controller
        /// adjusts every --assessment-period, the server never drained.
        Sustained,
    }
}

crate::names::named_enum! {
    "snake_case",
    /// When the working set is sent again to (re)fill the server's cache.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
    #[value(rename_all = "snake_case")]
    pub enum ReinitStrategy {
        /// Once per context size.
        Once,
        /// Before every cache rate.
        PerCacheRate,
        /// Before every phase.
        PerTest,
    }
}

crate::names::named_enum! {
    "snake_case",
    /// The metrics a gate judges per point (`--gate-metrics`, `gate-metrics` in
    /// a profile, and the names `verdict.json` and baselines carry). Which way
    /// is good for each is the analysis' (`analysis::Direction`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
    #[value(rename_all = "snake_case")]
    pub enum Metric {
        InputThroughput,
        OutputThroughput,
        TtftP50,
        TtftP95,
    }
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::InputThroughput,
        Metric::OutputThroughput,
        Metric::TtftP50,
        Metric::TtftP95,
    ];

    /// The name used in reports and in `verdict.json`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Where fixed mode takes its levels from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixedLoadSpec {
    /// The same levels at every point, lowest first.
    Levels(Vec<u32>),
    /// One level per point, `(context, rate, concurrency)`, read from an
    /// earlier run's results.json or a baseline.
    PerPoint(Vec<(u64, u32, u32)>),
}

impl FixedLoadSpec {
    /// The levels to measure at a point.
    pub fn levels(&self, context: u64, rate: u32) -> Option<Vec<u32>> {
        match self {
            FixedLoadSpec::Levels(levels) => Some(levels.clone()),
            FixedLoadSpec::PerPoint(points) => points
                .iter()
                .find(|(c, r, _)| *c == context && *r == rate)
                .map(|(_, _, n)| vec![*n]),
        }
    }
}
