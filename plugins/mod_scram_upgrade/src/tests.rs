//! The hooks on the SDK's test host, without mod_sasl2 (mod_sasl2's tests run both together).

use tessera_plugin_api::events::{hooks, Sasl2Success, TaskCall, TaskStep};
use tessera_plugin_api::protocol::StreamInfo;
use tessera_plugin_api::testing::TestHost;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, Config, ModuleCalls, PluginErrorKind};

use super::*;
use crate::task::UPGRADE_NS;

fn success(mechanism: &str, ask: bool) -> Sasl2Success {
    let mut authenticate =
        Element::new("authenticate", "urn:xmpp:sasl:2").with_attr("mechanism", mechanism);
    if ask {
        authenticate.push_child(Element::new("upgrade", UPGRADE_NS).with_text(TASK));
    }
    Sasl2Success {
        stream: StreamInfo {
            id: 9,
            ..StreamInfo::default()
        },
        user: "alice".into(),
        mechanism: mechanism.into(),
        authenticate,
        exchange_started_at_ms: 1,
    }
}

fn hook<P: serde::Serialize>(
    module: &impl ModuleCalls,
    name: &str,
    payload: &P,
) -> Option<Vec<u8>> {
    let payload = wire::encode(payload).unwrap();
    module
        .hook(name, wire::Bytes::new(&payload))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_task_is_listed_for_all_and_required_only_after_a_password_login_that_asked() {
    let host = TestHost::new("example.org");
    host.add_account("alice", "pencil", None);
    let loaded = host.load::<ScramUpgradeModule>(Config::default()).unwrap();
    let module = &*loaded.instance;
    let listed = hook(module, hooks::SASL2_UPGRADES, &StreamInfo::default()).unwrap();
    assert_eq!(wire::decode::<Vec<String>>("t", &listed).unwrap(), [TASK]);
    let required = |mechanism: &str, ask: bool| {
        hook(module, hooks::SASL2_TASKS, &success(mechanism, ask))
            .map(|r| wire::decode::<Vec<String>>("t", &r).unwrap())
    };
    for mechanism in ["SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "PLAIN"] {
        assert_eq!(required(mechanism, true), Some(vec![TASK.to_owned()]));
        assert_eq!(required(mechanism, false), None);
    }
    for mechanism in ["HT-SHA-256-NONE", "PASSWORD-RESET", "EXTERNAL"] {
        assert_eq!(required(mechanism, true), None, "{mechanism}");
    }
    // Other modules' tasks are not this module's to answer.
    let call = TaskCall {
        stream: StreamInfo::default(),
        user: "alice".into(),
        task: "TOTP-EXAMPLE".into(),
        element: Element::new("next", "urn:xmpp:sasl:2"),
    };
    assert_eq!(hook(module, hooks::SASL2_TASK, &call), None);
    // Ours, with no verified login on the stream: the host refuses.
    let ours = TaskCall {
        task: TASK.into(),
        ..call
    };
    let data = hook(module, hooks::SASL2_TASK, &ours).unwrap();
    assert!(matches!(
        wire::decode::<TaskStep>("t", &data).unwrap(),
        TaskStep::Data { .. }
    ));
    let answer = TaskCall {
        element: Element::new("task-data", "urn:xmpp:sasl:2").with_child(
            Element::new("hash", task::SCRAM_UPGRADE_NS).with_text("A".repeat(86) + "=="),
        ),
        ..ours
    };
    let step = hook(module, hooks::SASL2_TASK, &answer).unwrap();
    assert_eq!(
        wire::decode::<TaskStep>("t", &step).unwrap(),
        TaskStep::Failure {
            condition: SaslCondition::NotAuthorized,
            text: Some("Authentication is no longer valid".into()),
        }
    );
    assert_eq!(host.account("alice").unwrap().scram_sha512, None);
}

#[test]
fn saved_state_of_another_version_is_refused_by_name() {
    let host = TestHost::new("example.org");
    let bytes = wire::encode_state(STATE_VERSION + 1, &Vec::<(u64, u64, Sent)>::new()).unwrap();
    let host_handle = host.host_for("scram_upgrade");
    let err = ScramUpgradeModule::init(&host_handle, &Config::default(), Some(&bytes)).unwrap_err();
    assert_eq!(err.kind, PluginErrorKind::BAD_STATE);
    assert_eq!(err.message, "mod_scram_upgrade state version 2 is not 1");
}
