//! The page side: showing the form, setting the password, single use, expiry, revocation, CSRF,
//! bad input and limits, each with its status and nothing changed where it must not.

use super::*;

fn path_of(link: &str) -> String {
    link.strip_prefix(PUBLIC).expect("public url").to_owned()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn body(r: &tessera_plugin_api::protocol::HttpResponse) -> String {
    String::from_utf8(r.body.clone()).expect("utf-8")
}

fn header<'a>(r: &'a tessera_plugin_api::protocol::HttpResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A core and fake with one mailed link for alice; returns its path.
fn linked(settings: Settings) -> (Fake, Core, String) {
    let (fake, core) = (Fake::new(), core_with(settings));
    request(&core, &fake, "alice", "alice@example.net");
    let path = path_of(&last_link(&fake));
    (fake, core, path)
}

fn post(core: &Core, fake: &Fake, path: &str, csrf: &str, pw: &str, again: &str) -> HttpResponse {
    let form = format!("csrf={csrf}&password={pw}&confirm={again}");
    http(core, fake, "POST", path, &form)
}

#[test]
fn the_link_sets_the_password_once_and_revokes_the_other_links() {
    let (fake, core, path) = linked(Settings::default());
    fake.advance(1000);
    request(&core, &fake, "alice", "alice@example.net");
    let other = path_of(&last_link(&fake));
    let page = http(&core, &fake, "GET", &path, "");
    assert_eq!(page.status, 200);
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert!(
        header(&page, "content-security-policy").is_some_and(|c| c.contains("default-src 'none'"))
    );
    let html = body(&page);
    assert!(
        html.contains("alice@example.org") && !html.contains(&path[16..]),
        "no token in the page"
    );
    let csrf = csrf_of(&html);
    let done = post(&core, &fake, &path, &csrf, "new+secret+pw", "new+secret+pw");
    assert_eq!(done.status, 200, "{}", body(&done));
    assert!(body(&done).contains("<h1>Password changed</h1>"));
    assert_eq!(fake.password("alice").as_deref(), Some("new secret pw"));
    // The host fires user-password-changed; every other link dies with it.
    deliver(
        &core,
        &fake,
        "user-password-changed",
        &password_changed("alice", fake.now()),
    )
    .expect("event");
    let again = post(
        &core,
        &fake,
        &path,
        &csrf,
        "other+password",
        "other+password",
    );
    assert_eq!(again.status, 410);
    assert!(body(&again).contains("already been used"));
    assert_eq!(http(&core, &fake, "GET", &other, "").status, 410);
    assert!(body(&http(&core, &fake, "GET", &other, "")).contains("no longer valid"));
    assert_eq!(fake.password("alice").as_deref(), Some("new secret pw"));
    assert!(
        fake.logs().iter().all(|l| !l.contains(&path[16..])),
        "token never logged"
    );
}

/// CI saw it: the owner reset the password and at once asked for another link; the change's
/// event, delivered after that link was issued, revoked it too. Only links issued up to the
/// change are revoked.
#[test]
fn a_link_issued_after_a_change_survives_the_late_event_of_that_change() {
    let (fake, core, old) = linked(Settings::default());
    fake.advance(1000);
    let changed_at = fake.now();
    fake.svc()
        .set_password("alice", "changed elsewhere", None)
        .expect("set");
    fake.advance(5);
    request(&core, &fake, "alice", "alice@example.net");
    let fresh = path_of(&last_link(&fake));
    deliver(
        &core,
        &fake,
        "user-password-changed",
        &password_changed("alice", changed_at),
    )
    .expect("event");
    assert_eq!(http(&core, &fake, "GET", &fresh, "").status, 200);
    assert_eq!(http(&core, &fake, "GET", &old, "").status, 410);
    assert!(fake
        .logs()
        .iter()
        .any(|l| l.contains("revoked 1 outstanding password reset link(s) of alice")));
}

#[test]
fn unknown_forged_and_expired_links_get_clear_pages() {
    let settings = Settings {
        token_ttl_ms: 1000,
        ..Settings::default()
    };
    let (fake, core, path) = linked(settings);
    let forged = format!("/password-reset/{}", "A".repeat(43));
    for p in [
        forged.as_str(),
        "/password-reset/short",
        "/password-reset/",
        "/password-reset/a/b",
    ] {
        let r = http(&core, &fake, "GET", p, "");
        assert_eq!(r.status, 404, "{p}");
        assert!(body(&r).contains("<h1>Unknown link</h1>"));
        assert_eq!(post(&core, &fake, p, "x", "a", "a").status, 404);
    }
    let csrf = csrf_of(&body(&http(&core, &fake, "GET", &path, "")));
    fake.advance(1000);
    let r = http(&core, &fake, "GET", &path, "");
    assert_eq!(r.status, 410);
    assert!(body(&r).contains("<h1>This link has expired</h1>"));
    assert_eq!(
        post(&core, &fake, &path, &csrf, "long enough", "long enough").status,
        410
    );
    assert_eq!(fake.password("alice").as_deref(), Some("old password"));
    // Tombstones are cleaned up a day after expiry, then the link is simply unknown.
    fake.advance(crate::store::RETENTION_MS);
    core.cleanup(fake.svc());
    assert!(
        fake.kv()
            .iter()
            .map(|(k, _)| k)
            .all(|k| k.starts_with("decoy:")),
        "{:?}",
        fake.kv()
    );
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 404);
}

#[test]
fn csrf_and_password_rules_refuse_without_changing_anything() {
    let (fake, core, path) = linked(Settings::default());
    let csrf = csrf_of(&body(&http(&core, &fake, "GET", &path, "")));
    let no_csrf = http(
        &core,
        &fake,
        "POST",
        &path,
        "password=long+enough&confirm=long+enough",
    );
    assert_eq!(no_csrf.status, 403);
    assert!(body(&no_csrf).contains("This form cannot be accepted"));
    let forged = post(
        &core,
        &fake,
        &path,
        "1700000000000.AAAA",
        "long enough",
        "long enough",
    );
    assert_eq!(forged.status, 403);
    for (pw, again, needle) in [
        ("long+enough", "long+enoug", "not the same"),
        ("short", "short", "at least 8 characters"),
        ("", "", "both fields"),
        (
            "bell%07bell%07",
            "bell%07bell%07",
            "cannot use this password",
        ),
    ] {
        let r = post(&core, &fake, &path, &csrf, pw, again);
        assert_eq!(r.status, 400, "{pw}");
        let html = body(&r);
        assert!(html.contains(needle), "{needle}: {html}");
        assert!(html.contains("name=\"csrf\""), "the form again");
    }
    let r = post(
        &core,
        &fake,
        &path,
        &csrf,
        &"x".repeat(1025),
        &"x".repeat(1025),
    );
    assert!(body(&r).contains("not be longer than 1024 bytes"));
    let mut cross = HttpRequest {
        method: "POST".into(),
        path: path.clone(),
        headers: vec![("sec-fetch-site".into(), "cross-site".into())],
        body: format!("csrf={csrf}&password=long+enough&confirm=long+enough").into_bytes(),
        ..HttpRequest::default()
    };
    assert_eq!(core.http(fake.svc(), &cross).status, 403);
    cross.method = "PUT".into();
    let put = core.http(fake.svc(), &cross);
    assert_eq!(
        (put.status, header(&put, "allow")),
        (405, Some("GET, HEAD, POST"))
    );
    assert_eq!(fake.password("alice").as_deref(), Some("old password"));
    let ok = post(&core, &fake, &path, &csrf, "long+enough", "long+enough");
    assert_eq!(ok.status, 200, "the link still works after refusals");
}

#[test]
fn page_posts_are_limited_per_address_and_store_failures_are_503() {
    let (fake, core, path) = linked(Settings::default());
    for _ in 0..30 {
        assert_eq!(post(&core, &fake, &path, "x", "a", "a").status, 403);
    }
    let limited = post(&core, &fake, &path, "x", "a", "a");
    assert_eq!(limited.status, 429);
    assert!(body(&limited).contains("Too many attempts"));
    let (fake, core, path) = linked(Settings::default());
    fake.store_down();
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 503);
    assert_eq!(post(&core, &fake, &path, "x", "a", "a").status, 503);
}

#[test]
fn deleting_the_account_revokes_its_links() {
    let (fake, core, path) = linked(Settings::default());
    let deleted = UserDeleted {
        user: "alice".into(),
    };
    deliver(&core, &fake, "user-deleted", &deleted).expect("event");
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 410);
    assert!(
        fake.kv()
            .iter()
            .map(|(k, _)| k)
            .all(|k| !k.starts_with("user:")),
        "index emptied"
    );
    assert!(
        deliver(&core, &fake, "user-deleted", &()).is_err(),
        "a payload that is not a UserDeleted is an error"
    );
    deliver(&core, &fake, "session-bound", &()).expect("ignored");
}

/// Revocation does not depend on the event: a password change or a deletion whose
/// `user-password-changed` / `user-deleted` never reached the module (a full bus queue, a crash
/// between the store write and the event) still kills the link, on the page and on submit.
#[test]
fn a_link_dies_with_a_password_change_or_deletion_even_if_the_event_was_lost() {
    let (fake, core, path) = linked(Settings::default());
    let csrf = csrf_of(&body(&http(&core, &fake, "GET", &path, "")));
    fake.advance(1000);
    fake.test.change_account_silently("alice", |a| {
        if let Some(a) = a {
            a.password = "changed by the admin".into();
            a.password_changed_at_ms = fake.now();
        }
    });
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 410);
    let page = post(&core, &fake, &path, &csrf, "attacker pw 1", "attacker pw 1");
    assert_eq!(page.status, 410, "{}", body(&page));
    assert_eq!(
        fake.password("alice").as_deref(),
        Some("changed by the admin")
    );

    let (fake, core, path) = linked(Settings::default());
    fake.remove("alice");
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 410);
    // A new account of the same name does not inherit the old account's links.
    fake.advance(1000);
    fake.add("alice", "new owner", None);
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 410);
}
