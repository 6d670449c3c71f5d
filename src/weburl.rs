//! Our URL value: a WHATWG URL's serialization (href) and the components the code reads.
//!
//! Parsing is a port. The `.wasm` uses the platform's own parser (the JS `URL` class: the one
//! `fetch` uses, so a URL we check is the URL that is fetched, and no `url`/`idna` crate in the
//! `.wasm`); native builds and tests use the `url` crate. Both are WHATWG URL parsers, so both
//! serialize a URL the same canonical way, and [`Url`] reads its components from that text.
//!
//! The parser is a function the edge installs once ([`install`]) rather than a trait passed
//! around: URLs are parsed in pure places with no platform at hand (configuration, the
//! notification targets, the request model, send validation), and a parser has no state. In the
//! `.wasm` a parse before [`install`] fails with [`ParseError`]; natively the `url` crate is the
//! default.
//!
//! Host names come punycoded (ASCII) from either parser: Unicode host names are accepted and
//! turned into `xn--` labels, so every host check compares ASCII.

use std::sync::OnceLock;

/// A WHATWG URL parser: `input`, resolved against `base` when given, as its href; `None` when
/// it is not a valid (absolute, once resolved) URL.
pub type Parser = fn(input: &str, base: Option<&str>) -> Option<String>;

static PARSER: OnceLock<Parser> = OnceLock::new();

/// Sets the parser for this isolate (the first one set stays).
pub fn install(parser: Parser) {
    let _ = PARSER.set(parser);
}

fn parser() -> Option<Parser> {
    #[cfg(not(target_arch = "wasm32"))]
    return Some(*PARSER.get_or_init(|| native_parse));
    #[cfg(target_arch = "wasm32")]
    PARSER.get().copied()
}

#[cfg(not(target_arch = "wasm32"))]
fn native_parse(input: &str, base: Option<&str>) -> Option<String> {
    let u = match base {
        Some(b) => url::Url::parse(b).ok()?.join(input),
        None => url::Url::parse(input),
    };
    u.ok().map(String::from)
}

/// Not a valid absolute URL (or no parser installed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError;

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid URL")
    }
}

impl std::error::Error for ParseError {}

/// What a URL's host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Domain,
    Ipv4,
    Ipv6,
}

/// A parsed URL. Components are byte ranges of the href.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    href: String,
    /// The `:` after the scheme.
    scheme_end: usize,
    host: Option<(usize, usize, HostKind)>,
    port: Option<u16>,
    path_start: usize,
    /// The `?` and the `#`, when present.
    query_start: Option<usize>,
    fragment_start: Option<usize>,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.href)
    }
}

impl Url {
    /// Parses an absolute URL.
    pub fn parse(input: &str) -> Result<Url, ParseError> {
        Self::from_href(parser().ok_or(ParseError)?(input, None).ok_or(ParseError)?)
    }

    /// `input` resolved against this URL (a redirect's `Location`).
    pub fn join(&self, input: &str) -> Result<Url, ParseError> {
        Self::from_href(parser().ok_or(ParseError)?(input, Some(&self.href)).ok_or(ParseError)?)
    }

    /// Splits a canonical serialization. In it the first `#` starts the fragment and the first
    /// `?` before it the query (both are percent-encoded anywhere else); an authority follows
    /// `scheme://` up to the path, its last `@` ends the user info, and `:` can only precede
    /// the port (an IPv6 host is bracketed).
    fn from_href(href: String) -> Result<Url, ParseError> {
        let scheme_end = href.find(':').ok_or(ParseError)?;
        let fragment_start = href.find('#');
        let before_fragment = fragment_start.unwrap_or(href.len());
        let query_start = href[..before_fragment].find('?');
        let end = query_start.unwrap_or(before_fragment);
        if scheme_end == 0 || end <= scheme_end {
            return Err(ParseError);
        }
        let (host, port, mut path_start) = if href[scheme_end + 1..end].starts_with("//") {
            let auth_start = scheme_end + 3;
            let auth_end = href[auth_start..end]
                .find('/')
                .map_or(end, |i| auth_start + i);
            let host_start = href[auth_start..auth_end]
                .rfind('@')
                .map_or(auth_start, |i| auth_start + i + 1);
            let host_port = &href[host_start..auth_end];
            let host_len = if host_port.starts_with('[') {
                host_port.find(']').ok_or(ParseError)? + 1
            } else {
                host_port.find(':').unwrap_or(host_port.len())
            };
            let port = match &host_port[host_len..] {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or(ParseError)?,
                ),
            };
            let host = (host_len > 0).then(|| {
                let h = &host_port[..host_len];
                let kind = if h.starts_with('[') {
                    HostKind::Ipv6
                } else if is_special(&href[..scheme_end]) && is_ipv4(h) {
                    HostKind::Ipv4
                } else {
                    HostKind::Domain
                };
                (host_start, host_start + host_len, kind)
            });
            (host, port, auth_end)
        } else {
            (None, None, scheme_end + 1)
        };
        // A path starting with `//` under no host is serialized behind `/.`.
        if host.is_none() && href[path_start..end].starts_with("/.//") {
            path_start += 2;
        }
        Ok(Url {
            href,
            scheme_end,
            host,
            port,
            path_start,
            query_start,
            fragment_start,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.href
    }

    /// Lowercase, without the `:`.
    pub fn scheme(&self) -> &str {
        &self.href[..self.scheme_end]
    }

    /// Whether the scheme is `http` or `https`: the only URLs the Worker fetches or lets a
    /// client be sent back to.
    pub fn is_http(&self) -> bool {
        matches!(self.scheme(), "http" | "https")
    }

    /// The host as serialized: punycoded domain, dotted IPv4, bracketed IPv6.
    pub fn host_str(&self) -> Option<&str> {
        self.host.map(|(s, e, _)| &self.href[s..e])
    }

    pub fn host_kind(&self) -> Option<HostKind> {
        self.host.map(|(_, _, k)| k)
    }

    /// The port when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    pub fn path(&self) -> &str {
        let end = self
            .query_start
            .or(self.fragment_start)
            .unwrap_or(self.href.len());
        &self.href[self.path_start..end]
    }

    /// Without the `?`; `Some("")` for a bare `?`.
    pub fn query(&self) -> Option<&str> {
        let end = self.fragment_start.unwrap_or(self.href.len());
        self.query_start.map(|q| &self.href[q + 1..end])
    }

    pub fn fragment(&self) -> Option<&str> {
        self.fragment_start.map(|f| &self.href[f + 1..])
    }

    /// The query's `application/x-www-form-urlencoded` pairs, decoded.
    pub fn query_pairs(
        &self,
    ) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
        crate::urlencoded::parse(self.query().unwrap_or_default().as_bytes())
    }

    /// Removes the query (and its `?`), keeping any fragment.
    pub fn clear_query(&mut self) {
        if let Some(q) = self.query_start.take() {
            let end = self.fragment_start.unwrap_or(self.href.len());
            self.href.replace_range(q..end, "");
            self.fragment_start = self.fragment_start.map(|f| f - (end - q));
            // An opaque path then at the end loses its trailing spaces (as the `url` crate does).
            let opaque = self.host.is_none() && !self.path().starts_with('/');
            if opaque && self.fragment_start.is_none() {
                self.href.truncate(self.href.trim_end_matches(' ').len());
            }
        }
    }

    /// Appends form-encoded pairs to the query (after a `&` when it has some already),
    /// keeping any fragment.
    pub fn append_query_pairs(&mut self, pairs: &[(&str, &str)]) {
        let fragment = self.fragment_start.map(|f| self.href.split_off(f));
        match self.query_start {
            None => {
                self.query_start = Some(self.href.len());
                self.href.push('?');
            }
            Some(q) if self.href.len() > q + 1 => self.href.push('&'),
            Some(_) => {}
        }
        self.href.push_str(&crate::urlencoded::serialize(pairs));
        if let Some(fragment) = fragment {
            self.fragment_start = Some(self.href.len());
            self.href.push_str(&fragment);
        }
    }

    /// The URL's origin, as the URL standard defines it: a blob URL has its path's when that
    /// is an http(s) URL (one parse, never nested), and every scheme but ftp, http(s) and ws(s)
    /// has an opaque one.
    pub fn origin(&self) -> Origin {
        match self.scheme() {
            "blob" => Url::parse(self.path())
                .ok()
                .filter(Url::is_http)
                .map_or(Origin(None), |u| u.tuple_origin()),
            _ => self.tuple_origin(),
        }
    }

    fn tuple_origin(&self) -> Origin {
        match self.scheme() {
            "ftp" | "http" | "https" | "ws" | "wss" => {
                Origin(self.host_str().map(|h| match self.port {
                    Some(p) => format!("{}://{h}:{p}", self.scheme()),
                    None => format!("{}://{h}", self.scheme()),
                }))
            }
            _ => Origin(None),
        }
    }
}

/// A URL's origin: `scheme://host[:port]` (the port only when not the default), or opaque.
/// An opaque origin equals no origin, itself included.
#[derive(Debug, Clone)]
pub struct Origin(Option<String>);

impl Origin {
    /// `null` when opaque.
    pub fn ascii_serialization(&self) -> String {
        self.0.clone().unwrap_or_else(|| "null".into())
    }
}

impl PartialEq for Origin {
    fn eq(&self, other: &Origin) -> bool {
        self.0.is_some() && self.0 == other.0
    }
}

fn is_special(scheme: &str) -> bool {
    matches!(scheme, "http" | "https" | "ws" | "wss" | "ftp" | "file")
}

/// A serialized IPv4 host: four dotted decimal numbers (a special URL's host ending in a
/// number is always parsed as IPv4, and serialized like this).
fn is_ipv4(h: &str) -> bool {
    let parts: Vec<&str> = h.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u8>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every component we read, from our type and from the `url` crate, for one input.
    fn compare(input: &str) {
        let theirs = url::Url::parse(input);
        let ours = Url::parse(input);
        let (t, o) = match (theirs, ours) {
            (Ok(t), Ok(o)) => (t, o),
            (Err(_), Err(_)) => return,
            (t, o) => panic!("{input:?}: url {t:?}, ours {o:?}"),
        };
        assert_eq!(o.as_str(), t.as_str(), "{input:?}");
        assert_eq!(o.scheme(), t.scheme(), "{input:?}");
        assert_eq!(o.host_str(), t.host_str(), "{input:?}");
        let kind = t.host().map(|h| match h {
            url::Host::Domain(_) => HostKind::Domain,
            url::Host::Ipv4(_) => HostKind::Ipv4,
            url::Host::Ipv6(_) => HostKind::Ipv6,
        });
        assert_eq!(o.host_kind(), kind, "{input:?}");
        assert_eq!(o.port(), t.port(), "{input:?}");
        assert_eq!(o.path(), t.path(), "{input:?}");
        assert_eq!(o.query(), t.query(), "{input:?}");
        assert_eq!(o.fragment(), t.fragment(), "{input:?}");
        // The url crate follows nested blob URLs and takes any inner scheme's origin; the
        // standard (and the platform) only an http(s) one, once.
        let theirs = match t.scheme() {
            "blob" => url::Url::parse(t.path())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|u| u.origin()),
            _ => Some(t.origin()),
        };
        assert_eq!(
            o.origin().ascii_serialization(),
            theirs
                .as_ref()
                .map_or("null".into(), |t| t.ascii_serialization()),
            "{input:?}"
        );
        assert_eq!(
            o.origin() == o.origin(),
            theirs.is_some_and(|t| t.is_tuple()),
            "{input:?}"
        );
        let pairs = |i: &mut dyn Iterator<Item = (String, String)>| i.collect::<Vec<_>>();
        assert_eq!(
            pairs(&mut o.query_pairs().map(|(k, v)| (k.into(), v.into()))),
            pairs(&mut t.query_pairs().into_owned()),
            "{input:?}"
        );
        let mut o2 = o.clone();
        let mut t2 = t.clone();
        o2.clear_query();
        t2.set_query(None);
        assert_eq!(o2, Url::from_href(t2.to_string()).unwrap(), "{input:?}");
        let mut o3 = o.clone();
        let mut t3 = t.clone();
        o3.append_query_pairs(&[("a b", "é&"), ("", "")]);
        t3.query_pairs_mut()
            .append_pair("a b", "é&")
            .append_pair("", "");
        assert_eq!(o3, Url::from_href(t3.to_string()).unwrap(), "{input:?}");
        for rel in ["/x?y", "../a#b", "//other.example:81/p", "?q", "https://z/"] {
            assert_eq!(
                o.join(rel).ok().map(|u| u.to_string()),
                t.join(rel).ok().map(|u| u.to_string()),
                "{input:?} + {rel:?}"
            );
        }
    }

    #[test]
    fn components_match_the_url_crate() {
        for input in [
            "https://cdn.example/a.png",
            "HTTPS://User:Pa%20ss@CDN.Example:443/a/../b/./c?x=1&y=%41+b#frag?#",
            "http://cdn.example:8080/",
            "http://127.0.0.1:9797/_sim/images/ok.png",
            "http://0x7f.1/",
            "http://[::1]/a.png",
            "http://[::ffff:1.2.3.4]:81/",
            "https://tiktok.com@evil.example/x",
            "https://a:b@c@d.example/",
            "https://bücher.example/ok",
            "https://xn--bcher-kva.example/ok",
            "http://ｌｏｃａｌｈｏｓｔ/",
            "https://x/?",
            "https://x/#",
            "https://x?a#b?c",
            "ftp://f.example:21/x",
            "ws://w.example:80/",
            "wss://w.example:8443/",
            "file:///etc/passwd",
            "file://host/share",
            "mailto:a@b.example?subject=x",
            "data:text/plain,hi#x",
            "blob:https://app.example/uuid",
            "blob:ftp://f.example/x",
            "blob:blob:https://app.example/",
            "http://+1.+2.+3.+4/",
            "blob:not a url",
            "foo://1.2.3.4:99/p?q",
            "foo://[::1]/",
            "foo:///x",
            "foo://",
            "web+demo:/.//not-a-host/",
            "foo:a.example ?&",
            "sc: a b ?x#y",
            "web+demo://h/.//p",
            "javascript:alert(1)",
            "https://www.tiktok.com/v2/auth/authorize/",
            "https://api.telegram.org/bot1:AA/sendMessage?chat_id=-100%2B1&x",
            "/relative",
            "relative",
            "",
            "https://",
            "http://a b/",
            "http://1.2.3.4.5/",
            "http://foo.123/",
            "https://x:65536/",
        ] {
            compare(input);
        }
    }

    /// What the JS runtime's parser (Node's, from `scripts/whatwg-urls.mjs`) made of each input:
    /// the native parser gives the same href, and our splitting of that href the same
    /// components as the runtime's own getters. So the `.wasm`, which splits what the platform
    /// serialized, reads what the platform reads.
    #[test]
    fn components_match_the_js_runtime() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/whatwg/urls.json")).unwrap();
        let rows = doc["rows"].as_array().unwrap();
        assert!(rows.len() > 60);
        for r in rows {
            let input = r["input"].as_str().unwrap();
            let native = Url::parse(input);
            let Some(href) = r["href"].as_str() else {
                assert!(native.is_err(), "{input:?}: the runtime refuses it");
                continue;
            };
            assert_eq!(native.as_ref().map(Url::as_str), Ok(href), "{input:?}");
            let u = Url::from_href(href.to_string()).unwrap();
            let js = |k: &str| r[k].as_str().unwrap();
            assert_eq!(
                u.host_str().unwrap_or_default(),
                js("hostname"),
                "{input:?}"
            );
            assert_eq!(
                u.port().map(|p| p.to_string()).unwrap_or_default(),
                js("port"),
                "{input:?}"
            );
            assert_eq!(u.path(), js("pathname"), "{input:?}");
            // The runtime's getters give "" for both a missing and an empty query or fragment.
            let with = |prefix: &str, v: Option<&str>| {
                v.filter(|v| !v.is_empty())
                    .map(|v| format!("{prefix}{v}"))
                    .unwrap_or_default()
            };
            assert_eq!(with("?", u.query()), js("search"), "{input:?}");
            assert_eq!(with("#", u.fragment()), js("hash"), "{input:?}");
            assert_eq!(u.origin().ascii_serialization(), js("origin"), "{input:?}");
        }
    }

    #[test]
    fn relative_urls_are_refused() {
        assert_eq!(Url::parse("/relative"), Err(ParseError));
        assert_eq!(Url::parse("cdn.example/a.png"), Err(ParseError));
        assert!(Url::parse("https://x/").unwrap().join("http://[").is_err());
    }

    #[test]
    fn origins() {
        let o = |s: &str| Url::parse(s).unwrap().origin();
        assert_eq!(
            o("https://a.example:443/x").ascii_serialization(),
            "https://a.example"
        );
        assert_eq!(
            o("http://a.example:8080/").ascii_serialization(),
            "http://a.example:8080"
        );
        assert!(o("https://a.example/") == o("https://A.example:443/y"));
        assert!(o("https://a.example/") != o("http://a.example/"));
        assert!(o("data:x") != o("data:x"), "opaque origins are never equal");
        assert_eq!(o("data:x").ascii_serialization(), "null");
        assert_eq!(
            o("blob:https://app.example/u").ascii_serialization(),
            "https://app.example"
        );
        assert_eq!(
            o("blob:blob:https://app.example/").ascii_serialization(),
            "null",
            "only an http(s) URL inside a blob URL gives it an origin"
        );
        assert_eq!(o("blob:ftp://f.example/").ascii_serialization(), "null");
    }

    /// URL-ish text: schemes, user info, hosts of every kind, ports, and paths, queries and
    /// fragments made of the characters the parser treats specially.
    fn urlish() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            Just("https://"),
            Just("http://"),
            Just("HTTP://"),
            Just("ftp://"),
            Just("wss://"),
            Just("file://"),
            Just("blob:https://"),
            Just("foo://"),
            Just("foo:"),
            Just("mailto:"),
            Just(""),
        ];
        let user = prop_oneof![Just(""), Just("u@"), Just("u:p@"), Just("a@b@"), Just(":@")];
        let host = prop_oneof![
            Just("a.example"),
            Just("A.Example."),
            Just("127.0.0.1"),
            Just("0x7f.1"),
            Just("[::1]"),
            Just("[1:2::3]"),
            Just("bücher.example"),
            Just("xn--bcher-kva.example"),
            Just("%41.example"),
            Just(""),
            Just("1.2.3"),
            Just("foo.1"),
        ];
        let port = prop_oneof![
            Just(""),
            Just(":"),
            Just(":80"),
            Just(":443"),
            Just(":8080"),
            Just(":99999")
        ];
        let tail = proptest::collection::vec(
            prop_oneof![
                Just("/"),
                Just("?"),
                Just("#"),
                Just("&"),
                Just("="),
                Just("+"),
                Just("%"),
                Just("%2F"),
                Just(".."),
                Just("."),
                Just(" "),
                Just("é"),
                Just("@"),
                Just(":"),
                Just("\\"),
                Just("a"),
                Just("\t"),
                Just("|"),
                Just("[")
            ],
            0..10,
        )
        .prop_map(|v| v.concat());
        (scheme, user, host, port, tail).prop_map(|(s, u, h, p, t)| format!("{s}{u}{h}{p}{t}"))
    }

    proptest! {
        #[test]
        fn urlish_text_matches_the_url_crate(input in urlish()) {
            compare(&input);
        }
    }
}
