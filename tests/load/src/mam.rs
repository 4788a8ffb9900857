//! `mam`: what an archive query costs when the archive is large. B sends A `--fill` chat
//! messages (A's session takes them as they come, so they are archived as a client receives
//! them); then another session of A asks `--queries` times for the latest `--page` messages
//! (XEP-0313 with RSM `<before/>`), each query waiting for its `<fin/>`, and the tool reports
//! the query latency (send to `<fin/>`, the results included) and, with `--server-pid`, the
//! server's CPU per query. Needs mod_mam on the server.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::accounts::{Account, Accounts};
use crate::auth;
use crate::cli::MamArgs;
use crate::failure::Failure;
use crate::net::{Conn, Target};
use crate::procfs::CpuMeter;
use crate::stats::Tally;

/// User-agent ids of this mode.
const UA_BASE: u64 = 7 << 20;
/// Messages written at once by the filler.
const BATCH: usize = 200;

async fn login(target: &Target, account: &Arc<Account>, n: u64) -> Result<Conn, Failure> {
    auth::scram_session(target, account, UA_BASE + n).await
}

/// Reads until `n` more `</message>` ends arrived (an end cut between reads is counted once).
async fn take_messages(conn: &mut Conn, n: usize) -> Result<(), Failure> {
    let mut seen = 0;
    while seen < n {
        if conn.fill().await? == 0 {
            return Err(Failure::Io("connection closed during the fill".into()));
        }
        let text = conn.take_complete();
        seen += text.matches("</message>").count();
    }
    Ok(())
}

pub(crate) async fn run(
    args: &MamArgs,
    target: Target,
    accounts: &Accounts,
) -> anyhow::Result<Value> {
    if accounts.list.len() < 2 {
        bail!("the mam mode needs 2 accounts (--create 2)");
    }
    let (owner, sender) = (accounts.list[0].clone(), accounts.list[1].clone());
    let mut inbox = login(&target, &owner, 0).await.context("A's inbox login")?;
    let mut filler = login(&target, &sender, 1).await.context("B's login")?;
    let to = owner.jid();
    let fill_started = Instant::now();
    let mut sent = 0;
    while sent < args.fill {
        let n = BATCH.min(args.fill - sent);
        let mut batch = String::new();
        for i in sent..sent + n {
            batch.push_str(&format!(
                "<message to='{to}' type='chat' id='f{i}'><body>Message {i}: shall we meet at the usual place around seven?</body></message>"
            ));
        }
        filler.send(&batch).await.context("fill")?;
        take_messages(&mut inbox, n)
            .await
            .context("A taking the fill")?;
        sent += n;
    }
    let fill_s = fill_started.elapsed().as_secs_f64();
    let mut q = login(&target, &owner, 2).await.context("A's query login")?;
    let cpu = CpuMeter::start(args.common.server_pid)?;
    let mut tally = Tally::default();
    for i in 0..args.queries {
        let id = format!("q{i}");
        let started = Instant::now();
        q.send(&format!(
            "<iq type='set' id='{id}'><query xmlns='urn:xmpp:mam:2' queryid='{id}'>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>{}</max><before/></set></query></iq>",
            args.page
        ))
        .await?;
        let (_, text) = q.read_until(&["</fin></iq>", "</fin>"]).await?;
        let results = text.matches("<result ").count();
        if results != args.page.min(args.fill) {
            bail!("query {i}: {results} results, expected {}", args.page);
        }
        tally.ok(started.elapsed());
        q.clear();
    }
    let mut report = json!({
        "mode": "mam",
        "fill": args.fill,
        "fill_s": (fill_s * 100.0).round() / 100.0,
        "fill_per_s": (args.fill as f64 / fill_s).round(),
        "queries": args.queries,
        "page": args.page,
        "latency_ms": tally.latency_ms(),
        "errors_total": tally.errors_total(),
    });
    if let Some(map) = report.as_object_mut() {
        map.extend(cpu.finish(args.queries as u64, "query"));
    }
    eprintln!("mam: {report}");
    Ok(report)
}
