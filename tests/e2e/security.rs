//! Findings of the adversarial review (#12) that need the real server: logins that began before a
//! password change or an account deletion, and exchanges abandoned by their clients.

use std::time::{Duration, Instant};

use tessera_sasl::scram::{ClientBinding, ClientSecret, ScramClient};
use tessera_sasl::Hash;
use tessera_tests::sasl::{b64, inner, unb64, Sasl2Extras, SASL2};
use tessera_tests::{Server, ServerOptions, XmppClient};

const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

fn server() -> Server {
    let s = Server::start(&ServerOptions::with_modules(&["sasl2", "sasl2_fast"]));
    s.add_user("alice", "old password", None);
    s
}

/// A SCRAM-SHA-256 exchange up to the server-first message, asking for a FAST token and a
/// bound resource: returns the client-final message to send later.
fn scram_up_to_final(server: &Server, password: &str) -> (XmppClient, Vec<u8>) {
    let mut client = XmppClient::direct_tls(server.ports.direct_tls);
    client.open();
    let scram = ScramClient::new(
        Hash::Sha256,
        "alice",
        None,
        ClientBinding::NotSupported,
        "clientnonce0123456789ABCDEF",
    )
    .expect("scram client");
    let extras = Sasl2Extras {
        user_agent_id: Some(UA.into()),
        bind_tag: Some("held".into()),
        raw: "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>".into(),
    };
    client.sasl2_start("SCRAM-SHA-256", Some(&scram.client_first()), &extras);
    let first = client.read_until_any(&["</challenge>", "</failure>"]);
    let challenge = inner(&first, "challenge").expect("a challenge");
    let (client_final, _) = scram
        .server_first(&unb64(challenge), ClientSecret::Password(password))
        .expect("server-first");
    (client, client_final)
}

fn finish(client: &mut XmppClient, client_final: &[u8]) -> String {
    client.send(&format!(
        "<response xmlns='{SASL2}'>{}</response>",
        b64(client_final)
    ));
    client.read_until_any(&["</success>", "</failure>", "</stream:stream>"])
}

fn cli_ok(server: &Server, args: &[&str], stdin: &str) {
    let out = server.cli(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The finding: an attacker holding an exchange open while the owner ran `tessera user passwd`
/// finished it with the old password, got `<success>` and a FAST token valid for 21 days.
#[test]
fn a_login_begun_before_a_password_change_fails_after_it_and_gets_no_token() {
    let server = server();
    let (mut attacker, client_final) = scram_up_to_final(&server, "old password");
    cli_ok(
        &server,
        &["user", "passwd", "alice@localhost"],
        "new password\n",
    );
    let answer = finish(&mut attacker, &client_final);
    assert!(
        answer.contains("<failure") && answer.contains("<not-authorized"),
        "{answer}"
    );
    assert!(!answer.contains("<token"), "no token: {answer}");
    // The stream is not authenticated: a stanza gets the pre-auth stream error.
    attacker.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    let closed = attacker.read_to_close();
    assert!(!closed.contains("id='p1'"), "{closed}");
    server.wait_for_log("login refused");
    // The owner logs in with the new password.
    let mut owner = XmppClient::direct_tls(server.ports.direct_tls);
    owner.open();
    assert!(
        owner
            .sasl2_scram(
                Hash::Sha256,
                false,
                "alice",
                "new password",
                &Sasl2Extras::default()
            )
            .success
    );
}

/// The same after `tessera user del`: the observed bypass bound a resource that answered pings.
#[test]
fn a_login_begun_before_the_account_was_deleted_fails_after_it() {
    let server = server();
    let (mut attacker, client_final) = scram_up_to_final(&server, "old password");
    cli_ok(&server, &["user", "del", "alice@localhost"], "");
    let answer = finish(&mut attacker, &client_final);
    assert!(answer.contains("<not-authorized"), "{answer}");
    assert!(!answer.contains("<success"), "{answer}");
    // Nor does an account re-created under the same name (same password, new salt) honour an
    // exchange begun before.
    server.add_user("alice", "old password", None);
    let (mut third, client_final) = scram_up_to_final(&server, "old password");
    cli_ok(&server, &["user", "del", "alice@localhost"], "");
    server.add_user("alice", "old password", None);
    let answer = finish(&mut third, &client_final);
    assert!(answer.contains("<not-authorized"), "{answer}");
    let (mut fresh, client_final) = scram_up_to_final(&server, "old password");
    let answer = finish(&mut fresh, &client_final);
    assert!(
        answer.contains("<success"),
        "a fresh exchange works: {answer}"
    );
}

/// The finding: 300 abandoned SCRAM starts made a later reload of mod_sasl2 wait its whole
/// 30 s drain, because the host kept every exchange (and so the old generation) until
/// `MechanismEnd`, which an abandoned exchange never gets.
#[test]
fn abandoned_exchanges_are_dropped_with_their_connection() {
    let server = server();
    for _ in 0..40 {
        let (client, _) = scram_up_to_final(&server, "old password");
        drop(client);
    }
    // Let the server see the closes.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    cli_ok(&server, &["module", "reload", "sasl2"], "");
    let deadline = started + Duration::from_secs(10);
    loop {
        let out = server.cli(&["module", "list"], "");
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("module list json");
        let retired = list
            .iter()
            .any(|g| g["name"] == "sasl2" && g["state"] == "retired");
        if retired {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old generation is still held after 10 s: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
