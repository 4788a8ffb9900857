//! What a successful mechanism leads to: RFC 6120 `<success/>` and a stream restart, or for
//! XEP-0388 optional tasks, then XEP-0386 Bind 2, the `sasl2-success` hook and `<success/>`
//! followed at once by the post-authentication features (no restart).
//!
//! # Wire behaviour
//! `<success xmlns='urn:xmpp:sasl:2'>` holds, in order: `<additional-data/>` (if the mechanism
//! has final data and no `<continue/>` carried it), `<authorization-identifier/>` (the full JID
//! when bound or resumed, else the bare JID), task children, XEP-0198's `<resumed/>` or
//! `<failed/>` for an inline `<resume/>` (the `sasl2-resume` hook; a resumption skips Bind 2
//! and the features), `<bound/>` (if Bind 2 ran), then whatever the `sasl2-success` hook
//! returns (e.g. a FAST `<token/>`).

use tessera_plugin_api::events::{hooks, InlineResume, Sasl2Success};
use tessera_plugin_api::protocol::{StreamAction, StreamInfo};
use tessera_plugin_api::xml::Element;

use crate::api::{Bind2Bound, BIND2_BOUND};
use crate::bind2;
use crate::glue::{hook_answers, hook_elements};
use crate::machine::{Env, Exchange, Phase, StreamState};
use crate::outcome::fire;
use crate::tasks;
use crate::wire::{self, Profile, BIND2_NS, SASL2_NS};
use tessera_plugin_api::sync::locked;

/// The mechanism succeeded for `user`.
pub(crate) fn succeed(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    ex: Exchange,
    user: String,
    additional_data: Option<Vec<u8>>,
) -> Vec<StreamAction> {
    match ex.profile {
        Profile::Rfc6120 => {
            locked(env.limiter).record_success(&user, &stream.peer_ip);
            st.phase = Phase::Done;
            fire(env, stream, &ex, Some(&user), None);
            let xml = wire::legacy_success(additional_data.as_deref()).to_xml();
            vec![
                StreamAction::Authenticated {
                    user,
                    user_agent_id: None,
                },
                StreamAction::Send { xml },
                StreamAction::ExpectRestart,
            ]
        }
        Profile::Sasl2 => {
            // XEP-0484: a token login never starts interactive tasks.
            let requirements = if ex.hidden {
                Vec::new()
            } else {
                tasks::required(env, stream, &ex, &user)
            };
            if requirements.is_empty() {
                finish(st, env, stream, ex, user, additional_data, Vec::new())
            } else {
                tasks::offer(st, ex, user, additional_data.as_deref(), requirements)
            }
        }
    }
}

/// The hook payload describing this success.
pub(crate) fn payload(stream: &StreamInfo, ex: &Exchange, user: &str) -> Sasl2Success {
    Sasl2Success {
        stream: stream.clone(),
        user: user.to_owned(),
        mechanism: ex.mechanism.clone(),
        authenticate: ex
            .authenticate
            .clone()
            .unwrap_or_else(|| Element::new("authenticate", SASL2_NS)),
        exchange_started_at_ms: ex.started_at_ms,
    }
}

/// The generated part of a Bind 2 resource.
fn suffix(env: Env<'_>, user: &str, user_agent_id: Option<&str>) -> String {
    user_agent_id
        .and_then(|ua| bind2::stable_suffix(env.bind2_key, user, ua))
        .unwrap_or_else(|| bind2::random_suffix(&env.host.random_bytes(bind2::RANDOM_SUFFIX_BYTES)))
}

/// SASL2 success after the mechanism and all tasks.
pub(crate) fn finish(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    ex: Exchange,
    user: String,
    additional_data: Option<Vec<u8>>,
    mut extra: Vec<Element>,
) -> Vec<StreamAction> {
    let success = payload(stream, &ex, &user);
    let bare = format!("{user}@{}", stream.domain);
    // XEP-0198 inline: a resumption goes first and replaces Bind 2 (XEP-0388 §6).
    let mut resumed = None;
    if success
        .authenticate
        .child_elements()
        .any(|c| c.name == "resume")
    {
        let answers: Vec<InlineResume> = hook_answers(env.host, hooks::SASL2_RESUME, &success);
        for answer in answers {
            extra.push(answer.element.clone());
            if answer.session.is_some() {
                resumed = Some(answer);
                break;
            }
        }
    }
    let resource = if resumed.is_some() {
        None
    } else {
        bind2::request(&success.authenticate).map(|request| {
            bind2::resource(&request, &suffix(env, &user, ex.user_agent_id.as_deref()))
        })
    };
    let identifier = match &resource {
        Some(resource) => {
            let bound = Bind2Bound {
                stream: stream.clone(),
                user: user.clone(),
                resource: resource.clone(),
                bind: success
                    .authenticate
                    .child("bind", BIND2_NS)
                    .cloned()
                    .unwrap_or_else(|| Element::new("bind", BIND2_NS)),
            };
            extra.push(bind2::bound(hook_elements(env.host, BIND2_BOUND, &bound)));
            format!("{bare}/{resource}")
        }
        None => resumed.as_ref().and_then(|r| r.jid.clone()).unwrap_or(bare),
    };
    extra.extend(hook_elements(env.host, hooks::SASL2_SUCCESS, &success));
    let xml = wire::sasl2_success(additional_data.as_deref(), &identifier, extra).to_xml();
    locked(env.limiter).record_success(&user, &stream.peer_ip);
    st.phase = Phase::Done;
    fire(env, stream, &ex, Some(&user), None);
    let mut actions = vec![StreamAction::Authenticated {
        user,
        user_agent_id: ex.user_agent_id,
    }];
    actions.extend(resource.map(|resource| StreamAction::Bind { resource }));
    actions.push(StreamAction::Send { xml });
    match resumed {
        // The resumed session has its features; what it did not acknowledge follows.
        Some(InlineResume {
            session: Some(session),
            acked,
            ..
        }) => actions.push(StreamAction::Resume {
            session,
            replay: Vec::new(),
            acked,
        }),
        _ => actions.push(StreamAction::SendFeatures),
    }
    actions
}
