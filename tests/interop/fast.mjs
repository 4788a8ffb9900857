// xmpp.js (@xmpp/client 0.14.0) FAST (XEP-0484) driver for tests/e2e/interop_fast.rs and
// tests/e2e/password_reset.rs.
//
//   node fast.mjs --service URL --domain D --user NAME [--password PW] --state FILE [--timeout S]
//                 [--stay] [--software NAME]
//
// One login, then a clean logout. With --stay, no logout: after "online" the session stays
// connected until the server ends it, which it must do with a stream error (see below). The
// state FILE is this "installation" of the client, kept
// between processes the way an app keeps it on disk:
//   {"user_agent_id": "<uuid>", "token": {"mechanism": …, "token": …, "expiry": …} | null}
// A missing FILE is created with a fresh UUID and no token. The user-agent id is ours, not
// xmpp.js's default (a new random UUID per client object), because the server binds a token to
// it. xmpp.js's FAST store (client.fast.fetchToken/saveToken/deleteToken, in memory by default)
// is pointed at FILE: xmpp.js reads the token from it before authenticating, writes the token it
// gets in <success> (a first token or a rotated one), and deletes it when the server refuses it.
// Without --password the library gets no password at all: FAST is the only way in.
//
// What xmpp.js does by itself (nothing here changes it): when the server offers <fast/> in SASL2
// <inline>, it picks the first HT mechanism it implements (HT-SHA-256-NONE, its only one); with a
// usable stored token it sends <authenticate mechanism='HT-SHA-256-NONE'> with <fast/>, otherwise
// (or after the token was refused) it authenticates with its password mechanism and adds
// <request-token mechanism='HT-SHA-256-NONE'/>.
//
// stdout: one JSON object per line, for the Rust test to parse:
//   {"event":"authenticate","mechanism":…,"fast":bool,"request_token":MECH|null,"user_agent_id":…}
//   {"event":"success","token":TOKEN|null,"expiry":…|null}   (SASL2 <success>, its <token/> if any)
//   {"event":"failure","condition":…}                         (SASL2 <failure>)
//   {"event":"token-saved","mechanism":…,"token":…,"expiry":…} / {"event":"token-deleted"}
//   {"event":"online","jid":…,"tls":…,"user_agent_id":…}
//   {"event":"stream-error","condition":…}                   (--stay only: <stream:error>, e.g. "reset")
//   {"event":"offline"}
//   {"event":"error","error":…}
// Exit status 0 after online and a clean logout, 1 on any failure, 3 on its own timeout.
// With --stay: 0 once the server has sent a stream error and the connection has ended (then
// "stream-error" and "offline" were printed, in that order), 1 if the connection ended without a
// stream error. xmpp.js reports a received <stream:error> as an "error" event carrying a
// StreamError whose .condition is the condition element's name (@xmpp/connection
// _onStreamError), then closes the stream and the socket itself; its "disconnect" status marks
// the socket closed. Under --stay a StreamError is printed as "stream-error", not as "error".
// stderr: the raw XML exchange (">> " sent, "<< " received).
//
// Bounded: the process kills itself after --timeout seconds (default 20) besides the caller's
// timeout. The server's certificate is self-signed: TLS verification is off for this process.

import { readFileSync, renameSync, writeFileSync } from "node:fs";

process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

const { client, xml } = await import("@xmpp/client");

const FAST_NS = "urn:xmpp:fast:0";
const SASL2_NS = "urn:xmpp:sasl:2";

function parseArgs(argv) {
  const opts = { timeout: 20, stay: false, software: "tessera-interop-fast" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (key === "--stay") {
      // A flag: no value.
      opts.stay = true;
      i -= 1;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${key}`);
    switch (key) {
      case "--service":
        opts.service = value;
        break;
      case "--domain":
        opts.domain = value;
        break;
      case "--user":
        opts.username = value;
        break;
      case "--password":
        opts.password = value;
        break;
      case "--state":
        opts.state = value;
        break;
      case "--timeout":
        opts.timeout = Number(value);
        break;
      case "--software":
        // The <software/> of its SASL2 <user-agent/> (XEP-0494 lists it).
        opts.software = value;
        break;
      default:
        throw new Error(`unknown option ${key}`);
    }
  }
  for (const required of ["service", "domain", "username", "state"]) {
    if (!opts[required]) throw new Error(`--${required === "username" ? "user" : required} is required`);
  }
  return opts;
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function loadState(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
    // A new installation: its own user-agent id, no token yet.
    return { user_agent_id: globalThis.crypto.randomUUID(), token: null };
  }
  const state = JSON.parse(text);
  if (typeof state.user_agent_id !== "string") throw new Error(`${path}: no user_agent_id`);
  state.token ??= null;
  return state;
}

function saveState(path, state) {
  // Write-then-rename: a reader never sees half a file.
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

let xmpp;
let timer;

async function finish(code) {
  clearTimeout(timer);
  if (xmpp && xmpp.status !== "offline") {
    await Promise.race([
      xmpp.stop().catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ]);
  }
  process.exit(code);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  timer = setTimeout(() => {
    emit({ event: "error", error: `timed out after ${opts.timeout} s` });
    process.exit(3);
  }, opts.timeout * 1000);

  const state = loadState(opts.state);
  saveState(opts.state, state);

  const params = {
    service: opts.service,
    domain: opts.domain,
    username: opts.username,
    resource: "fast",
    userAgent: xml("user-agent", { id: state.user_agent_id }, [
      xml("software", {}, opts.software),
    ]),
  };
  if (opts.password !== undefined) params.password = opts.password;
  xmpp = client(params);
  // Never reconnect on its own: a failure must show as a failure.
  xmpp.reconnect.stop();

  // The persistent FAST store.
  xmpp.fast.fetchToken = async () => state.token;
  xmpp.fast.saveToken = async (token) => {
    state.token = {
      mechanism: token.mechanism,
      token: token.token,
      expiry: token.expiry,
    };
    saveState(opts.state, state);
    emit({ event: "token-saved", ...state.token });
  };
  xmpp.fast.deleteToken = async () => {
    state.token = null;
    saveState(opts.state, state);
    emit({ event: "token-deleted" });
  };

  // Raw XML trace: _onData is bound when the first socket is attached, so patch it before start().
  const onData = xmpp._onData;
  xmpp._onData = function (data) {
    process.stderr.write(`<< ${data.toString("utf8")}\n`);
    return onData.call(this, data);
  };
  const write = xmpp.write;
  xmpp.write = function (string) {
    process.stderr.write(`>> ${string}\n`);
    return write.call(this, string);
  };

  xmpp.on("send", (el) => {
    if (!el.is("authenticate", SASL2_NS)) return;
    emit({
      event: "authenticate",
      mechanism: el.attrs.mechanism,
      fast: !!el.getChild("fast", FAST_NS),
      request_token: el.getChild("request-token", FAST_NS)?.attrs.mechanism ?? null,
      user_agent_id: el.getChild("user-agent")?.attrs.id ?? null,
    });
  });
  xmpp.on("element", (el) => {
    if (el.is("success", SASL2_NS)) {
      const token = el.getChild("token", FAST_NS);
      emit({
        event: "success",
        token: token?.attrs.token ?? null,
        expiry: token?.attrs.expiry ?? null,
      });
    } else if (el.is("failure", SASL2_NS)) {
      const condition = el.children.find((c) => typeof c !== "string" && c.name !== "text");
      emit({ event: "failure", condition: condition?.name ?? null });
    }
  });
  // --stay: the stream error the server ended the session with, and the end of the connection.
  let streamError = null;
  const disconnected = new Promise((resolve) => xmpp.once("disconnect", resolve));
  xmpp.on("error", (err) => {
    if (opts.stay && err?.name === "StreamError") {
      streamError ??= err;
      emit({ event: "stream-error", condition: err.condition ?? null });
      return;
    }
    // The open() race (see below) can also surface as a TimeoutError event although the stream
    // is open: noted, not reported; "online" decides.
    if (err?.name === "TimeoutError") {
      process.stderr.write(`noting xmpp.js TimeoutError event (open() race): ${err}\n`);
      return;
    }
    emit({ event: "error", error: String(err?.stack ?? err) });
  });

  const online = new Promise((resolve, reject) => {
    xmpp.once("online", resolve);
    xmpp.once("offline", () => reject(new Error("went offline before online")));
  });
  // Same xmpp.js 0.14 start() race as in xmppjs.mjs (client side): over direct TLS, start() can
  // reject with a TimeoutError although the stream opened; "online" decides.
  let opened = false;
  xmpp.on("open", () => {
    opened = true;
  });
  const startFailure = xmpp.start().then(
    () => null,
    (err) => {
      if (err?.name === "TimeoutError" && opened) {
        process.stderr.write("ignoring xmpp.js start() TimeoutError: the stream had opened\n");
        return null;
      }
      return err ?? new Error("start() failed");
    },
  );
  const address = await Promise.race([
    online,
    startFailure.then((err) => {
      if (err) throw err;
      return online;
    }),
  ]);
  await xmpp.send(xml("presence"));
  emit({
    event: "online",
    jid: address.toString(),
    tls: xmpp.socket?.socket?.getProtocol?.() ?? null,
    user_agent_id: state.user_agent_id,
  });
  if (opts.stay) {
    await disconnected;
    emit({ event: "offline" });
    // The connection is gone already: nothing left to stop.
    clearTimeout(timer);
    if (streamError === null) {
      emit({ event: "error", error: "the connection ended without a stream error" });
      process.exit(1);
    }
    process.exit(0);
  }
  await xmpp.stop();
  emit({ event: "offline" });
  await finish(0);
}

main().catch(async (err) => {
  emit({ event: "error", error: String(err?.stack ?? err) });
  await finish(1);
});
