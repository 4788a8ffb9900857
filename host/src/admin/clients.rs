//! `tessera client list JID` and `client revoke JID ID`: the admin socket asks the module that
//! keeps the client list (mod_client_management) through the query hooks of
//! `tessera_plugin_api::clients`, and renders its answer for a terminal.

use tessera_plugin_api::clients::{hooks, ClientView, RevokeOutcome, RevokeRequest};
use tessera_plugin_api::datetime::format_utc;
use tessera_plugin_api::wire::{self, Bytes};

use crate::Shared;

const NOT_LOADED: &str = "client management is not available: enable the `client_management` \
                          module (mod_client_management)";

/// The prepared account name, if it exists.
fn account(shared: &Shared, user: &str) -> Result<String, String> {
    let user = crate::jid::prep_localpart(user).map_err(|e| e.to_string())?;
    match shared.store.get_account(&user) {
        Ok(Some(_)) => Ok(user),
        Ok(None) => Err(format!("no such account `{user}`")),
        Err(e) => Err(e.to_string()),
    }
}

/// The first reply of `hook` that decodes as `A`.
fn ask<P: serde::Serialize, A: serde::de::DeserializeOwned>(
    shared: &Shared,
    hook: &str,
    payload: &P,
) -> Result<A, String> {
    let payload = wire::encode(payload).map_err(|e| e.to_string())?;
    crate::runtime::services::call_hook(shared, hook, Bytes::new(&payload))
        .iter()
        .find_map(|reply| wire::decode::<A>(hook, reply).ok())
        .ok_or_else(|| NOT_LOADED.to_owned())
}

/// The account's clients, as JSON with a rendered `message`.
pub(super) fn list(shared: &Shared, user: &str) -> Result<serde_json::Value, String> {
    let user = account(shared, user)?;
    let views: Vec<ClientView> =
        ask::<_, Result<Vec<ClientView>, String>>(shared, hooks::CLIENTS_LIST, &user)?
            .map_err(|e| format!("client list of {user} failed: {e}"))?;
    let message = render(&views, crate::now_ms());
    Ok(serde_json::json!({ "message": message, "clients": views.len() }))
}

/// Revoke one client.
pub(super) fn revoke(shared: &Shared, user: &str, id: &str) -> Result<serde_json::Value, String> {
    let user = account(shared, user)?;
    let request = RevokeRequest {
        user: user.clone(),
        id: id.to_owned(),
    };
    let outcome: RevokeOutcome = ask(shared, hooks::CLIENTS_REVOKE, &request)?;
    tracing::info!(user = %user, client = %id, ?outcome, "admin: client revoked");
    let message = match outcome {
        RevokeOutcome::NotFound => return Err(format!("{user} has no client `{id}`")),
        RevokeOutcome::Failed(why) => {
            return Err(format!(
                "{id} of {user} was not revoked (nothing was done): {why}"
            ))
        }
        RevokeOutcome::Revoked {
            credentials,
            sessions,
        } => format!("revoked {id}: {credentials} token(s) removed, {sessions} session(s) closed"),
        RevokeOutcome::PasswordRemains {
            credentials,
            sessions,
        } => format!(
            "revoked {id}: {credentials} token(s) removed, {sessions} session(s) closed; it has \
             logged in with the current password, so it can again: change the password \
             (tessera user passwd {user}) to keep it out"
        ),
    };
    Ok(serde_json::json!({ "message": message }))
}

/// A duration for people: `3d`, `5h`, `12m`, `40s`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The list as a table.
pub(crate) fn render(views: &[ClientView], now_ms: u64) -> String {
    if views.is_empty() {
        return "no clients".into();
    }
    let mut rows = vec![[
        "ID".to_owned(),
        "USER-AGENT ID".to_owned(),
        "SOFTWARE".to_owned(),
        "DEVICE".to_owned(),
        "AUTH".to_owned(),
        "TOKEN AGE".to_owned(),
        "SESSIONS".to_owned(),
        "LAST LOGIN".to_owned(),
    ]];
    for v in views {
        let mut auth = Vec::new();
        if v.password {
            auth.push("password");
        }
        if !v.credentials.is_empty() {
            auth.push("fast");
        }
        let token = v
            .credentials
            .iter()
            .map(|c| c.issued_at_ms)
            .max()
            .map_or_else(|| "-".to_owned(), |at| age(now_ms.saturating_sub(at)));
        let last = if v.last_seen_ms > 0 {
            format_utc(v.last_seen_ms)
        } else {
            "-".to_owned()
        };
        rows.push([
            v.id.clone(),
            v.user_agent_id.clone().unwrap_or_else(|| "-".into()),
            v.software.clone().unwrap_or_else(|| "unknown".into()),
            v.device.clone().unwrap_or_else(|| "-".into()),
            if auth.is_empty() {
                "-".into()
            } else {
                auth.join("+")
            },
            token,
            v.sessions.to_string(),
            last,
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::clients::ClientCredential;

    #[test]
    fn the_list_renders_as_an_aligned_table() {
        let now = 1_700_000_000_000;
        let views = vec![
            ClientView {
                id: "a1b2c3d4e5f6g7h8".into(),
                user_agent_id: Some("d4565fa7-4d72-4749-b3d3-740edbf87770".into()),
                software: Some("go-sendxmpp".into()),
                device: None,
                first_seen_ms: now - 7_200_000,
                last_seen_ms: now - 3_600_000,
                password: true,
                credentials: vec![ClientCredential {
                    client: "x".into(),
                    kind: "fast".into(),
                    issued_at_ms: now - 90_000,
                    expires_at_ms: now + 1,
                }],
                sessions: 1,
                logged_in: true,
            },
            ClientView {
                id: "zz".into(),
                user_agent_id: None,
                software: None,
                device: Some("phone".into()),
                first_seen_ms: 0,
                last_seen_ms: 0,
                password: true,
                credentials: vec![],
                sessions: 0,
                logged_in: false,
            },
        ];
        assert_eq!(
            render(&views, now),
            "ID                USER-AGENT ID                         SOFTWARE     DEVICE  AUTH           TOKEN AGE  SESSIONS  LAST LOGIN\n\
             a1b2c3d4e5f6g7h8  d4565fa7-4d72-4749-b3d3-740edbf87770  go-sendxmpp  -       password+fast  1m         1         2023-11-14T21:13:20Z\n\
             zz                -                                     unknown      phone   password       -          0         -"
        );
        assert_eq!(render(&[], now), "no clients");
    }
}
