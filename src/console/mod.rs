//! `GET /admin`: the admin console, one page over the Worker's own JSON API (`index.html`,
//! `app.js`, `app.css` beside this file), compiled into the Worker so it needs no other
//! service. The page holds no secret: it asks for an API key and every action goes through the
//! same routes and checks as any API client. Served with a strict Content-Security-Policy (no
//! inline script or style, nothing from other origins but images such as TikTok avatars) and
//! never inside a frame.

use crate::error::{Error, Result};
use crate::http::Response;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// Scripts, styles and API calls from this origin only; images (avatars) also over https.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' https: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The console's page (`asset` empty) or one of its files.
pub fn serve(asset: &str) -> Result<Response> {
    let (content_type, body) = match asset {
        "" | "index.html" => ("text/html; charset=utf-8", INDEX),
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "app.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Err(Error::NotFound),
    };
    let mut r = Response::bytes(200, content_type, body.as_bytes().to_vec());
    r.headers.set("content-security-policy", CSP);
    r.headers.set("x-frame-options", "DENY");
    r.headers.set("referrer-policy", "no-referrer");
    // Revalidated on each load: a deployment's new console shows at once.
    r.headers.set("cache-control", "no-cache");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_served_with_a_strict_policy() {
        for (asset, kind) in [
            ("", "text/html"),
            ("app.js", "text/javascript"),
            ("app.css", "text/css"),
        ] {
            let r = serve(asset).unwrap();
            assert!(r.headers.get("content-type").unwrap().starts_with(kind));
            assert_eq!(r.headers.get("content-security-policy"), Some(CSP));
            assert_eq!(r.headers.get("x-frame-options"), Some("DENY"));
            assert_eq!(r.headers.get("x-content-type-options"), Some("nosniff"));
        }
        assert_eq!(serve("../Cargo.toml").unwrap_err().code(), "not_found");
        assert!(!CSP.contains("unsafe") && CSP.contains("frame-ancestors 'none'"));
        // No inline script or style: the policy would block it.
        assert!(
            !INDEX.contains("<script>") && !INDEX.contains("<style") && !INDEX.contains(" style=")
        );
        for handler in [
            "onclick=",
            "onload=",
            "onerror=",
            "onsubmit=",
            "onchange=",
            "javascript:",
        ] {
            assert!(!INDEX.contains(handler), "{handler}");
        }
        // The key is kept in this tab only, never in a cookie, local storage or a URL.
        assert!(SCRIPT.contains("sessionStorage") && !SCRIPT.contains("localStorage"));
        assert!(!SCRIPT.contains("document.cookie") && !SCRIPT.contains("innerHTML"));
    }
}
