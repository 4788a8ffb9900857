//! XEP-0388 §2.3 tasks: `<continue/>`, `<next/>`, `<task-data/>`, served to other modules through
//! the query hooks documented in [`crate::api`].
//!
//! # Wire behaviour
//! * One `<continue/>` per requirement, listing its alternative tasks; the first carries the
//!   mechanism's `<additional-data/>`.
//! * `<next task='…'/>` must name an offered task (else `<failure><malformed-request/>`); while a
//!   task runs only `<task-data/>` and `<abort/>` are allowed, and before one is picked only
//!   `<next/>` and `<abort/>`; anything else closes the stream with `<policy-violation/>`.
//! * A task without an owner (no module answers) fails with `<temporary-auth-failure/>`.

use std::collections::VecDeque;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::protocol::{StreamAction, StreamInfo};
use tessera_plugin_api::wire::Bytes;
use tessera_plugin_api::xml::Element;

use crate::api::{TaskCall, TaskStep, SASL2_TASK, SASL2_TASKS};
use crate::glue::hook_names;
use crate::machine::{Env, Exchange, Phase, StreamState};
use crate::outcome::{close, fail, fire, Fail};
use crate::success::{finish, payload};
use crate::wire::{self, Incoming, Profile};

/// SASL2 state between `<continue/>` and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskState {
    /// The attempt.
    pub(crate) ex: Exchange,
    /// The authenticated account.
    pub(crate) user: String,
    /// Requirements not yet met; the front one is being offered.
    pub(crate) pending: VecDeque<Vec<String>>,
    /// The task the client picked for the front requirement.
    pub(crate) current: Option<String>,
    /// Children for `<success/>` from finished tasks.
    pub(crate) children: Vec<Element>,
}

/// Ask other modules which tasks must follow this success.
pub(crate) fn required(
    env: Env<'_>,
    stream: &StreamInfo,
    ex: &Exchange,
    user: &str,
) -> Vec<Vec<String>> {
    hook_names(env.host, SASL2_TASKS, &payload(stream, ex, user))
}

/// Send the first `<continue/>`.
pub(crate) fn offer(
    st: &mut StreamState,
    ex: Exchange,
    user: String,
    additional_data: Option<&[u8]>,
    requirements: Vec<Vec<String>>,
) -> Vec<StreamAction> {
    let pending: VecDeque<_> = requirements.into();
    let tasks = pending.front().cloned().unwrap_or_default();
    st.continued = true;
    st.phase = Phase::Tasks(TaskState {
        ex,
        user,
        pending,
        current: None,
        children: Vec::new(),
    });
    vec![StreamAction::Send {
        xml: wire::continue_tasks(additional_data, &tasks).to_xml(),
    }]
}

/// Handle an element while tasks run.
pub(crate) fn handle(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    mut t: TaskState,
    incoming: Incoming<'_>,
) -> Vec<StreamAction> {
    match (incoming, t.current.clone()) {
        (Incoming::Next(el), None) => {
            let task = el.attr("task").unwrap_or_default();
            let offered = t
                .pending
                .front()
                .is_some_and(|alts| alts.iter().any(|a| a == task));
            if !offered {
                let f = Fail::new(SaslCondition::MalformedRequest, Some("Task not offered"));
                return fail(
                    st,
                    env,
                    stream,
                    &t.ex,
                    Fail {
                        user: Some(t.user.clone()),
                        ..f
                    },
                );
            }
            t.current = Some(task.to_owned());
            run(st, env, stream, t, task.to_owned(), el)
        }
        (Incoming::TaskData(el), Some(task)) => run(st, env, stream, t, task, el),
        (Incoming::Abort(Profile::Sasl2), _) => {
            let f = Fail::new(SaslCondition::Aborted, None);
            fail(
                st,
                env,
                stream,
                &t.ex,
                Fail {
                    user: Some(t.user.clone()),
                    ..f
                },
            )
        }
        _ => {
            fire(
                env,
                stream,
                &t.ex,
                Some(&t.user),
                Some(SaslCondition::Aborted),
            );
            vec![close("Unexpected element during SASL2 tasks")]
        }
    }
}

/// Pass a client element to the task's owner and apply its answer.
fn run(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    mut t: TaskState,
    task: String,
    el: &Element,
) -> Vec<StreamAction> {
    let call = TaskCall {
        stream: stream.clone(),
        user: t.user.clone(),
        task,
        element: el.clone(),
    };
    let answer = tessera_plugin_api::wire::encode(&call)
        .and_then(|call| env.host.call_hook(SASL2_TASK, Bytes::new(&call)))
        .unwrap_or_default()
        .iter()
        .find_map(|r| tessera_plugin_api::wire::decode::<TaskStep>(SASL2_TASK, r).ok());
    let user = Some(t.user.clone());
    match answer {
        Some(TaskStep::Data { children }) => {
            st.phase = Phase::Tasks(t);
            vec![StreamAction::Send {
                xml: wire::task_data(children).to_xml(),
            }]
        }
        Some(TaskStep::Done { children }) => {
            t.children.extend(children);
            t.pending.pop_front();
            t.current = None;
            match t.pending.front().cloned() {
                Some(next) => {
                    st.phase = Phase::Tasks(t);
                    let xml = wire::continue_tasks(None, &next).to_xml();
                    vec![StreamAction::Send { xml }]
                }
                None => finish(st, env, stream, t.ex, t.user, None, t.children),
            }
        }
        Some(TaskStep::Failure { condition, text }) => {
            let f = Fail::new(condition, text.as_deref());
            fail(st, env, stream, &t.ex, Fail { user, ..f })
        }
        None => {
            let f = Fail::new(
                SaslCondition::TemporaryAuthFailure,
                Some("Task unavailable"),
            );
            fail(st, env, stream, &t.ex, Fail { user, ..f })
        }
    }
}
