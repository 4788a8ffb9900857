//! Fuzzing entry points (`tests/fuzz`, targets `data_form` and `reset_form`). Built only with
//! the cargo feature `fuzzing`; not part of the module's interface. Panics are the bugs; the
//! asserts state what must hold for every input.

use tessera_plugin_api::xml::{parse, Element, ParseLimits};

use crate::form::{self, Answer};

fn depth_and_count(el: &Element) -> (usize, usize) {
    let mut deepest = 0;
    let mut count = 1;
    for child in el.child_elements() {
        let (d, c) = depth_and_count(child);
        deepest = deepest.max(d);
        count += c;
    }
    (deepest + 1, count)
}

/// The submitted data form of the `PASSWORD-RESET` mechanism: the strict XML parser, then the
/// form validation, with and without a `username` field asked for.
pub fn data_form(data: &[u8]) {
    let limits = ParseLimits::default();
    if let Ok(el) = parse(data, limits) {
        let (depth, count) = depth_and_count(&el);
        assert!(depth <= limits.max_depth, "depth {depth}");
        assert!(count <= limits.max_elements, "{count} elements");
        let xml = el.to_xml();
        assert_eq!(parse(xml.as_bytes(), limits).as_ref(), Ok(&el), "{xml}");
    }
    for ask_username in [false, true] {
        match form::parse_response(data, ask_username) {
            Ok(Answer::Cancelled) => {}
            Ok(Answer::Submitted { username, email }) => {
                assert_eq!(username.is_some(), ask_username);
                if let Some(name) = username {
                    assert!(!name.is_empty() && name.trim() == name);
                    assert!(name.len() <= form::MAX_USERNAME);
                }
                assert!(!email.is_empty() && email.trim() == email);
                assert!(email.len() <= form::MAX_EMAIL);
                assert_eq!(email.matches('@').count(), 1);
            }
            Err(reason) => assert!(!reason.is_empty()),
        }
    }
}

/// Percent-encodes every byte outside `[A-Za-z0-9*-._]` (the urlencoded serialiser's set).
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"*-._".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The reset page's POST handling: the link token of a path and the urlencoded form body.
pub fn reset_form(data: &[u8]) {
    if let Ok(path) = std::str::from_utf8(data) {
        if let Some(token) = crate::web::link_token(path) {
            assert!(!token.is_empty() && !token.contains('/'));
            assert!(path.ends_with(token));
        }
    }
    let Some(sub) = crate::web::parse_submission(data) else {
        return;
    };
    assert!(std::str::from_utf8(data).is_ok());
    // Writing the fields out again and reading them back gives the same submission.
    let fields = [
        ("csrf", &sub.csrf),
        ("password", &sub.password),
        ("confirm", &sub.confirm),
    ];
    let body: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode_component(v))))
        .collect();
    let again = crate::web::parse_submission(body.join("&").as_bytes());
    assert_eq!(again.as_ref(), Some(&sub));
}
