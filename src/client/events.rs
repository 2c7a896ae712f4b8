//! Reading one stream event for what a measurement needs: a fast path for
//! the plain token events that make up most of a stream, and borrowed
//! views of the rest.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

/// The keys the fast path looks for, each with its searcher built once.
struct Keys {
    choices: Finder<'static>,
    error: Finder<'static>,
    /// Keys whose value must be null for an event to take the fast path.
    must_be_null: [Finder<'static>; 4],
    /// Keys whose non-empty string value is generated text.
    text: [Finder<'static>; 4],
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    choices: Finder::new(b"\"choices\""),
    error: Finder::new(b"\"error\""),
    must_be_null: [
        Finder::new(b"\"usage\""),
        Finder::new(b"\"finish_reason\""),
        Finder::new(b"\"timings\""),
        Finder::new(b"\"token_ids\""),
    ],
    text: [
        Finder::new(b"\"text\""),
        Finder::new(b"\"content\""),
        Finder::new(b"\"reasoning_content\""),
        Finder::new(b"\"reasoning\""),
    ],
});

/// The values that follow `"key"` wherever it stands as an object key (a
/// quoted `key` then a colon: inside a string value quotes are escaped, and
/// a string value is never followed by a colon).
fn key_values<'a>(data: &'a [u8], key: &'a Finder<'static>) -> impl Iterator<Item = &'a [u8]> + 'a {
    let len = key.needle().len();
    key.find_iter(data).filter_map(move |at| {
        let rest = data[at + len..].trim_ascii_start();
        let rest = rest.strip_prefix(b":")?;
        Some(rest.trim_ascii_start())
    })
}

/// The fast path for the events that make up most of a stream: one token,
/// no usage, no finish, no error. Returns whether it carries generated
/// text, or `None` when the event needs a full parse.
pub(super) fn quick_scan(data: &[u8]) -> Option<bool> {
    let keys = &*KEYS;
    let trimmed = data.trim_ascii();
    if !(trimmed.starts_with(b"{") && trimmed.ends_with(b"}"))
        || key_values(data, &keys.choices).next().is_none()
        || keys.error.find(data).is_some()
    {
        return None;
    }
    for key in &keys.must_be_null {
        if key_values(data, key).any(|value| !value.starts_with(b"null")) {
            return None;
        }
    }
    let has_text = keys.text.iter().any(|key| {
        key_values(data, key).any(|value| value.len() > 1 && value[0] == b'"' && value[1] != b'"')
    });
    Some(has_text)
}

/// One stream event, read for what a measurement needs and nothing more:
/// no allocation and no UTF-8 validation on the path of a token event.
#[derive(Deserialize)]
pub(super) struct ChunkView {
    #[serde(default)]
    pub(super) choices: ChoicesSummary,
    #[serde(default)]
    pub(super) usage: Option<UsageView>,
    #[serde(default)]
    pub(super) timings: Option<TimingsView>,
    #[serde(default)]
    pub(super) error: Option<serde_json::Value>,
}

/// llama.cpp's per-request timings.
#[derive(Deserialize)]
pub(super) struct TimingsView {
    pub(super) cache_n: Option<u64>,
}

/// The byte length of a JSON string (escapes not undone, UTF-8 not checked).
struct TextLen(usize);

impl<'de> Deserialize<'de> for TextLen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Length;
        impl serde::de::Visitor<'_> for Length {
            type Value = TextLen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E>(self, bytes: &[u8]) -> Result<TextLen, E> {
                Ok(TextLen(bytes.len()))
            }
            fn visit_str<E>(self, text: &str) -> Result<TextLen, E> {
                Ok(TextLen(text.len()))
            }
        }
        deserializer.deserialize_bytes(Length)
    }
}

/// What the choices of an event say, folded without collecting them.
#[derive(Default)]
pub(super) struct ChoicesSummary {
    pub(super) has_text: bool,
    pub(super) finished: bool,
    /// Token ids the choices carried, when any carried them (vLLM's
    /// `return_token_ids`).
    pub(super) token_ids: Option<u32>,
}

impl<'de> Deserialize<'de> for ChoicesSummary {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fold;
        impl<'de> serde::de::Visitor<'de> for Fold {
            type Value = ChoicesSummary;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_unit<E>(self) -> Result<ChoicesSummary, E> {
                Ok(ChoicesSummary::default())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ChoicesSummary, A::Error> {
                let mut summary = ChoicesSummary::default();
                while let Some(choice) = seq.next_element::<ChoiceView>()? {
                    let len = |text: &Option<TextLen>| text.as_ref().map_or(0, |t| t.0);
                    let mut text = len(&choice.text);
                    if let Some(delta) = &choice.delta {
                        text += len(&delta.content)
                            + len(&delta.reasoning_content)
                            + len(&delta.reasoning);
                    }
                    summary.has_text |= text > 0;
                    summary.finished |= choice.finish_reason.is_some();
                    if let Some(ids) = choice.token_ids {
                        let total = summary.token_ids.get_or_insert(0);
                        *total = total.saturating_add(ids.0);
                    }
                }
                Ok(summary)
            }
        }
        deserializer.deserialize_any(Fold)
    }
}

#[derive(Deserialize)]
struct ChoiceView {
    #[serde(default)]
    text: Option<TextLen>,
    #[serde(default)]
    delta: Option<DeltaView>,
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    token_ids: Option<Count>,
}

/// The length of a JSON array, its elements skipped.
struct Count(u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counting;
        impl<'de> serde::de::Visitor<'de> for Counting {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Count, A::Error> {
                let mut n: u32 = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n = n.saturating_add(1);
                }
                Ok(Count(n))
            }
        }
        deserializer.deserialize_seq(Counting)
    }
}

#[derive(Deserialize)]
struct DeltaView {
    #[serde(default)]
    content: Option<TextLen>,
    #[serde(default)]
    reasoning_content: Option<TextLen>,
    #[serde(default)]
    reasoning: Option<TextLen>,
}

#[derive(Deserialize)]
pub(super) struct UsageView {
    pub(super) prompt_tokens: Option<u64>,
    pub(super) completion_tokens: Option<u64>,
    #[serde(default)]
    pub(super) prompt_tokens_details: Option<DetailsView>,
}

#[derive(Deserialize)]
pub(super) struct DetailsView {
    pub(super) cached_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_a_full_parse() {
        let events: [&[u8]; 10] = [
            br#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" Hi","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            br#"{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": null}]}"#,
            br#"{"choices":[{"index":0,"text":"\"usage\":{","finish_reason":null}],"usage":null}"#,
            br#"{"choices":[{"index":0,"text":"say \"error\"","finish_reason":null}]}"#,
            br#"{"choices":[{"text":"!","finish_reason":"length"}],"usage":null}"#,
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            br#"{not json}"#,
            br#"{"error":{"message":"boom"}}"#,
            br#"{"choices":[{"delta":{"reasoning_content":"hm"},"finish_reason":null}]}"#,
        ];
        let expected = [
            Some(true),
            Some(false),
            Some(true),
            Some(true),
            Some(true),
            None,
            None,
            None,
            None,
            Some(true),
        ];
        for (event, want) in events.iter().zip(expected) {
            assert_eq!(
                quick_scan(event),
                want,
                "{}",
                String::from_utf8_lossy(event)
            );
            if let Some(has_text) = want {
                let full: ChunkView = serde_json::from_slice(event).unwrap();
                assert_eq!(full.choices.has_text, has_text);
            }
        }
    }
}
