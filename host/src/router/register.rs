//! XEP-0077 In-Band Registration: password change and account removal for authenticated users
//! (always), and registration of new accounts before authentication (only with
//! `allow_registration = true`; the XMPP Interop Testing suite provisions accounts this way).

use std::sync::Arc;
use tessera_plugin_api::{ErrorType, StanzaCondition, StreamCondition};

use tessera_plugin_api::protocol::StreamInfo;
use tessera_plugin_api::xml::Element;

use super::{error_out, error_out_typed, error_reply, result_for, RouteOutcome, CLIENT_NS};
use crate::accounts::AccountError;
use crate::sessions::SessionEntry;
use crate::stream::StreamError;
use crate::Shared;

/// The `jabber:iq:register` namespace.
pub const NS: &str = "jabber:iq:register";

fn field(query: &Element, name: &str) -> Option<String> {
    query.child(name, NS).map(Element::text)
}

/// A registration IQ before authentication; `None` if it is not one (the caller then treats the
/// stanza as unauthenticated traffic).
pub async fn pre_auth(shared: &Arc<Shared>, _info: &StreamInfo, iq: &Element) -> Option<String> {
    let query = iq.child("query", NS)?;
    let domain = shared.config.domain.clone();
    let reply = match iq.attr("type") {
        Some("get") => result_for(iq, &domain).with_child(
            Element::new("query", NS)
                .with_child(
                    Element::new("instructions", NS).with_text("Choose a username and password."),
                )
                .with_child(Element::new("username", NS))
                .with_child(Element::new("password", NS)),
        ),
        Some("set") => {
            let (Some(user), Some(password)) = (field(query, "username"), field(query, "password"))
            else {
                return error_reply(
                    iq,
                    ErrorType::Modify,
                    StanzaCondition::NotAcceptable,
                    &domain,
                )
                .map(|e| e.to_xml_in(CLIENT_NS));
            };
            let email = field(query, "email").filter(|e| !e.is_empty());
            let store = shared.store.clone();
            let now = crate::now_ms();
            let created = tokio::task::spawn_blocking(move || {
                crate::accounts::create(store.as_ref(), &user, &password, email.as_deref(), now)
            })
            .await;
            match created {
                Ok(Ok(user)) => {
                    tracing::info!(%user, "account registered in-band");
                    result_for(iq, &domain)
                }
                Ok(Err(AccountError::Store(crate::store::StoreError::AccountExists(_)))) => {
                    return error_reply(iq, ErrorType::Cancel, StanzaCondition::Conflict, &domain)
                        .map(|e| e.to_xml_in(CLIENT_NS));
                }
                Ok(Err(AccountError::Store(_))) | Err(_) => {
                    return error_reply(
                        iq,
                        ErrorType::Wait,
                        StanzaCondition::InternalServerError,
                        &domain,
                    )
                    .map(|e| e.to_xml_in(CLIENT_NS));
                }
                Ok(Err(_)) => {
                    return error_reply(
                        iq,
                        ErrorType::Modify,
                        StanzaCondition::NotAcceptable,
                        &domain,
                    )
                    .map(|e| e.to_xml_in(CLIENT_NS));
                }
            }
        }
        _ => {
            return error_reply(iq, ErrorType::Modify, StanzaCondition::BadRequest, &domain)
                .map(|e| e.to_xml_in(CLIENT_NS))
        }
    };
    Some(reply.to_xml_in(CLIENT_NS))
}

/// Password change (`<username/><password/>`) or `<remove/>` by an authenticated user.
pub async fn authenticated(
    shared: &Arc<Shared>,
    session: &Arc<SessionEntry>,
    iq: &Element,
    query: &Element,
) -> RouteOutcome {
    let domain = shared.config.domain.clone();
    if iq.attr("type") == Some("get") {
        let reply = result_for(iq, &domain).with_child(
            Element::new("query", NS)
                .with_child(Element::new("registered", NS))
                .with_child(Element::new("username", NS).with_text(&session.user))
                .with_child(Element::new("password", NS)),
        );
        return RouteOutcome::reply(&reply);
    }
    if query.child("remove", NS).is_some() {
        let shared2 = shared.clone();
        let user = session.user.clone();
        let removed = tokio::task::spawn_blocking(move || shared2.delete_user(&user)).await;
        return match removed {
            Ok(Ok(())) => RouteOutcome {
                reply: result_for(iq, &domain).to_xml_in(CLIENT_NS),
                close: Some(StreamError::with_text(
                    StreamCondition::NotAuthorized,
                    "account removed",
                )),
            },
            _ => error_out_typed(
                iq,
                ErrorType::Wait,
                StanzaCondition::InternalServerError,
                &domain,
            ),
        };
    }
    let user_field = field(query, "username");
    if user_field
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(&session.user))
    {
        return error_out(iq, StanzaCondition::NotAuthorized, &domain);
    }
    let Some(password) = field(query, "password") else {
        return error_out(iq, StanzaCondition::BadRequest, &domain);
    };
    let shared2 = shared.clone();
    let user = session.user.clone();
    let origin = session.stream_id;
    let changed =
        tokio::task::spawn_blocking(move || shared2.set_password(&user, &password, Some(origin)))
            .await;
    match changed {
        Ok(Ok(())) => RouteOutcome::reply(&result_for(iq, &domain)),
        Ok(Err(AccountError::Password(_))) => {
            error_out(iq, StanzaCondition::NotAcceptable, &domain)
        }
        _ => error_out_typed(
            iq,
            ErrorType::Wait,
            StanzaCondition::InternalServerError,
            &domain,
        ),
    }
}
