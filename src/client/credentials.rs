//! Basic-auth credentials taken out of endpoint URLs, so no message or
//! file carries them.

/// Basic-auth credentials taken out of a URL, for the URLs under `prefix`.
#[derive(Clone)]
pub(super) struct Credentials {
    pub(super) prefix: String,
    pub(super) user: String,
    pub(super) password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("prefix", &self.prefix)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `url` without `user:password@`: the form requests and messages use once
/// [`Client::keep_credentials`](super::Client::keep_credentials) has the credentials.
pub fn without_credentials(url: &str) -> String {
    split_credentials(url).0
}

/// `url` without `user:password@`, and what they were (percent-decoded).
pub(super) fn split_credentials(url: &str) -> (String, Option<Credentials>) {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_string(), None);
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return (url.to_string(), None);
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(parsed.username());
    let password = parsed.password().map(decode);
    // Both setters fail only for URLs that cannot have a user (no host),
    // which a URL with one is not.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    // `Url` adds a `/` to a bare host; the endpoints are kept without.
    let clean = if url.ends_with('/') {
        parsed.to_string()
    } else {
        parsed.to_string().trim_end_matches('/').to_string()
    };
    let credentials = Credentials {
        prefix: clean.clone(),
        user,
        password,
    };
    (clean, Some(credentials))
}
