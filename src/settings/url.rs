//! Endpoint URLs: normalised for appending paths, and named with their
//! password masked wherever they are written.

use crate::error::{Error, Result};

/// Normalises an endpoint to `scheme://host[:port][/path]` without a
/// trailing `/` or `/v1`, so paths can be appended.
pub fn normalize_endpoint(endpoint: &str) -> Result<String> {
    let url = reqwest::Url::parse(endpoint).map_err(|e| {
        Error::Usage(format!(
            "--api-endpoint {:?} is not a URL ({e}); write it like \
             http://localhost:8000",
            mask_password(endpoint)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Usage(format!(
            "--api-endpoint {:?} must start with http:// or https://",
            mask_password(endpoint)
        )));
    }
    let mut text = url.as_str().trim_end_matches('/').to_string();
    if let Some(stripped) = text.strip_suffix("/v1") {
        text = stripped.to_string();
    }
    Ok(text)
}

/// `text` with the credentials of every URL in it (a comma-separated list
/// too) shown as `***`: `user:***@host`, or `***@host` for a token given
/// alone. Works on the text, so a URL that does not parse is masked too:
/// how files and messages name an endpoint.
pub fn mask_password(text: &str) -> String {
    text.split(',').map(mask_one).collect::<Vec<_>>().join(",")
}

fn mask_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    // The authority ends where a path, a query or the text around the URL
    // (in a message) begins.
    let end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#' | ')' | '"' | '\'' | '>') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let masked = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:{PASSWORD_MASK}"),
        None => PASSWORD_MASK.to_string(),
    };
    format!("{}{masked}{}", &url[..scheme_end], &rest[at..])
}

/// What stands for a password in files and messages.
pub const PASSWORD_MASK: &str = "***";

pub(super) fn serialize_masked<S: serde::Serializer>(
    urls: &[String],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(|url| mask_password(url)))
}

pub(super) fn serialize_masked_url<S: serde::Serializer>(
    url: &str,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&mask_password(url))
}

pub(super) fn serialize_masked_option<S: serde::Serializer>(
    url: &Option<String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_some(&mask_password(url)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            normalize_endpoint("http://h:8000/v1/").unwrap(),
            "http://h:8000"
        );
        assert_eq!(
            normalize_endpoint("https://h/api").unwrap(),
            "https://h/api"
        );
    }
}
