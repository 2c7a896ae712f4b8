//! How an enum's values become text, once: [`named_enum!`] gives an enum
//! the same names in the files it is written to (serde) and in the text it
//! is shown as (strum's `Display` and `&'static str`), in the case it is
//! declared with. `tests/enum_names.rs` holds every such enum to serde and
//! the option values to the names clap takes.

/// Declares an enum whose values are named in `$case` (`"lowercase"`,
/// `"snake_case"`, `"SCREAMING_SNAKE_CASE"`) in files and in text alike; a
/// variant may still carry its own `#[serde(rename)]` and
/// `#[strum(serialize)]`.
macro_rules! named_enum {
    ($case:literal, $(#[$attr:meta])* $vis:vis enum $name:ident { $($body:tt)* }) => {
        $(#[$attr])*
        #[derive(
            ::serde::Serialize,
            ::serde::Deserialize,
            ::strum::Display,
            ::strum::IntoStaticStr,
            ::strum::VariantArray,
        )]
        #[serde(rename_all = $case)]
        #[strum(serialize_all = $case)]
        $vis enum $name { $($body)* }
    };
}

pub(crate) use named_enum;
