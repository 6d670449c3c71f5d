//! The admin console at `/admin`: one page over the Worker's own JSON API, plain HTML, CSS and
//! JS in `public/admin/`. It is a static asset: Workers static assets serve it before a request
//! reaches the Worker, so it costs no Worker CPU and no `.wasm` bytes. Its headers
//! (`public/_headers`) give it a strict Content-Security-Policy (no inline script or style,
//! nothing from other origins but images such as TikTok avatars) and keep it out of frames. The
//! page holds no secret: it asks for an API key and every action goes through the same routes
//! and checks as any API client. This module only holds the checks of those files.

#[cfg(test)]
mod tests {
    const INDEX: &str = include_str!("../public/admin/index.html");
    const SCRIPT: &str = include_str!("../public/admin/app.js");
    const HEADERS: &str = include_str!("../public/_headers");

    /// Scripts, styles and API calls from this origin only; images (avatars) also over https.
    const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
        img-src 'self' https: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
        frame-ancestors 'none'";

    #[test]
    fn the_page_and_its_files_are_served_with_a_strict_policy() {
        let mut rules = HEADERS.split("\n/");
        let admin = rules.next().unwrap();
        assert!(admin.starts_with("/admin*\n"), "{admin}");
        let headers: Vec<(&str, &str)> = admin
            .lines()
            .skip(1)
            .filter_map(|l| l.trim().split_once(": "))
            .collect();
        for expected in [
            ("Content-Security-Policy", CSP),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            // Revalidated on each load: a deployment's new console shows at once.
            ("Cache-Control", "no-cache"),
        ] {
            assert!(headers.contains(&expected), "{expected:?} in {headers:?}");
        }
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
