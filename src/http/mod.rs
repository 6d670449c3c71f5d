//! Runtime-neutral HTTP values: what the edge turns `worker::Request`/`Response` into and back,
//! so routing and every handler run natively in unit tests.

pub(crate) mod ctx;
pub(crate) mod extract;
pub mod routes;

use serde::Serialize;

/// Header list with case-insensitive lookup; names are stored lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces any existing value for `name`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Reads the form the edge passes headers in between Rust and JS: each name and each value
    /// followed by a line feed. The runtime's headers never hold one. A missing final value
    /// ends the list.
    pub fn from_lines(text: &str) -> Headers {
        let mut parts = text.split('\n');
        std::iter::from_fn(|| Some((parts.next()?, parts.next()?))).collect()
    }

    /// These headers in [`Headers::from_lines`]' form, or `None` when a name or value holds a
    /// line feed (split there, it would read back as another header).
    pub fn to_lines(&self) -> Option<String> {
        let mut text = String::new();
        for (k, v) in self.iter() {
            if k.contains('\n') || v.contains('\n') {
                return None;
            }
            text.push_str(k);
            text.push('\n');
            text.push_str(v);
            text.push('\n');
        }
        Some(text)
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (k, v) in iter {
            h.0.push((k.as_ref().to_ascii_lowercase(), v.into()));
        }
        h
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// An inbound request as the core sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The full URL the client used (scheme, host, path, query).
    pub url: crate::weburl::Url,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// The first value of a query parameter, percent-decoded once.
    pub fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `scheme://host[:port]` of this request, used to build our own absolute URLs.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

/// A response from the core, or from TikTok through the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response {
            status,
            headers: Headers::new().with("content-type", "application/json; charset=utf-8"),
            body,
        }
    }

    pub fn html(status: u16, html: String) -> Self {
        Response {
            status,
            headers: Headers::new()
                .with("content-type", "text/html; charset=utf-8")
                .with(
                    "content-security-policy",
                    "default-src 'none'; style-src 'unsafe-inline'",
                )
                .with("cache-control", "no-store"),
            body: html.into_bytes(),
        }
    }

    pub fn redirect(location: &str) -> Self {
        Response {
            status: 302,
            headers: Headers::new()
                .with("location", location)
                .with("cache-control", "no-store"),
            body: Vec::new(),
        }
    }

    /// Binary content (media passed through).
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: Headers::new()
                .with("content-type", content_type)
                .with("x-content-type-options", "nosniff"),
            body,
        }
    }

    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response {
            status,
            headers: Headers::new().with("content-type", "text/plain; charset=utf-8"),
            body: text.into().into_bytes(),
        }
    }
}

/// A request the core wants sent (to TikTok, an image host or a forwarding target).
#[derive(Debug, Clone)]
pub struct Outbound {
    pub method: Method,
    pub url: String,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    /// Give up after this long; the transport reports a timeout.
    pub timeout_ms: u64,
    /// Refuse a response body larger than this, without reading it all into memory.
    pub max_body: Option<usize>,
}

/// Escapes text for inclusion in HTML element content or attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_set_replaces() {
        let mut h: Headers = [("Content-Type", "a")].into_iter().collect();
        assert_eq!(h.get("content-type"), Some("a"));
        h.set("CONTENT-TYPE", "b");
        assert_eq!(h.get("Content-Type"), Some("b"));
        assert_eq!(h.iter().count(), 1);
    }

    #[test]
    fn header_lines_round_trip_and_refuse_a_line_feed() {
        let h: Headers = [
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("x-empty", ""),
            ("content-type", "text/plain; charset=utf-8"),
        ]
        .into_iter()
        .collect();
        let text = h.to_lines().unwrap();
        assert_eq!(
            text,
            "set-cookie\na=1\nset-cookie\nb=2\nx-empty\n\ncontent-type\ntext/plain; charset=utf-8\n"
        );
        assert_eq!(
            Headers::from_lines(&text),
            h,
            "both set-cookie values and the empty one kept"
        );
        assert_eq!(Headers::from_lines(""), Headers::new());
        assert_eq!(Headers::from_lines("dangling"), Headers::new());
        assert_eq!(
            Headers::from_lines("A\nv"),
            [("a", "v")].into_iter().collect()
        );
        let split = Headers::new().with("x-a", "1\nx-injected\n2");
        assert_eq!(split.to_lines(), None);
        assert_eq!(Headers::new().with("x\ny", "1").to_lines(), None);
    }

    #[test]
    fn query_is_decoded_once() {
        let r = Request {
            method: Method::Get,
            url: crate::weburl::Url::parse("http://x/oauth/callback?code=a%2Ab%252A&state=s")
                .unwrap(),
            headers: Headers::new(),
            body: vec![],
        };
        assert_eq!(r.query("code").as_deref(), Some("a*b%2A"));
        assert_eq!(r.query("missing"), None);
        assert_eq!(r.origin(), "http://x");
    }

    #[test]
    fn html_escape_covers_markup() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
