//! The reset page's HTML and headers. Plain HTML forms, no JavaScript, no external resources:
//! the only style sheet is inline and allowed by its hash in a strict Content-Security-Policy.
//! Every dynamic value is HTML-escaped; the link's token never appears in a page (the form posts
//! to its own URL with an empty `action`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The page's whole style sheet.
const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;\
padding:0 1rem;color:#1d2433;background:#f6f7f9}\
main{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:1.5rem 2rem}\
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:1rem 0 .3rem;font-weight:600}\
input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;\
border:1px solid #9aa3b2;border-radius:4px}\
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;border:0;border-radius:4px;\
background:#2456c9;color:#fff;cursor:pointer}\
.error{background:#fdecec;border:1px solid #e3a1a1;padding:.6rem;border-radius:4px}\
.hint{color:#5a6272;font-size:.9rem}";

/// HTML-escape text for element content and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Content-Security-Policy: nothing but the inline style sheet (by hash), forms posting to
/// this origin only, no framing, no `<base>`.
pub(crate) fn csp() -> String {
    let hash = STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Headers of every page.
pub(crate) fn headers() -> Vec<(String, String)> {
    [
        ("content-type", "text/html; charset=utf-8".to_owned()),
        ("cache-control", "no-store".to_owned()),
        ("content-security-policy", csp()),
        ("referrer-policy", "no-referrer".to_owned()),
        ("x-frame-options", "DENY".to_owned()),
        ("cross-origin-opener-policy", "same-origin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn document(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{CSS}</style></head>\
         <body><main>{main}</main></body></html>\n",
        title = escape(title),
    )
}

/// The form: new password twice, the hidden CSRF value, and an optional error above it.
pub(crate) fn form(jid: &str, csrf: &str, min_length: usize, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let main = format!(
        "<h1>Choose a new password</h1>\
         <p>Account: <strong>{jid}</strong></p>{error}\
         <form method=\"post\" action=\"\" autocomplete=\"off\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"text\" name=\"username\" value=\"{jid}\" autocomplete=\"username\" hidden>\
         <label for=\"password\">New password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" required \
         minlength=\"{min_length}\" maxlength=\"1024\" autocomplete=\"new-password\">\
         <label for=\"confirm\">New password again</label>\
         <input type=\"password\" id=\"confirm\" name=\"confirm\" required \
         minlength=\"{min_length}\" maxlength=\"1024\" autocomplete=\"new-password\">\
         <p class=\"hint\">At least {min_length} characters. Setting it signs out every \
         device that uses the account.</p>\
         <button type=\"submit\">Set new password</button></form>",
        jid = escape(jid),
        csrf = escape(csrf),
    );
    document("Choose a new password", &main)
}

/// A page with a heading and paragraphs of text.
pub(crate) fn message(title: &str, paragraphs: &[&str]) -> String {
    let mut main = format!("<h1>{}</h1>", escape(title));
    for p in paragraphs {
        main.push_str(&format!("<p>{}</p>", escape(p)));
    }
    document(title, &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_escapes_and_posts_to_itself() {
        let html = form("a<b>@x", "1.t\"ok", 8, Some("Bad & worse"));
        assert!(html.contains("a&lt;b&gt;@x"), "{html}");
        assert!(html.contains("value=\"1.t&quot;ok\""));
        assert!(html.contains("<p class=\"error\" role=\"alert\">Bad &amp; worse</p>"));
        assert!(html.contains("<form method=\"post\" action=\"\""));
        assert!(html.contains("minlength=\"8\""));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_csp_allows_exactly_the_inline_style() {
        let csp = csp();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"));
        let h = headers();
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("cache-control"), Some("no-store"));
        assert_eq!(get("referrer-policy"), Some("no-referrer"));
        assert_eq!(get("x-frame-options"), Some("DENY"));
        assert!(message("T & t", &["<x>"]).contains("<h1>T &amp; t</h1><p>&lt;x&gt;</p>"));
    }
}
