"""slixmpp driver for tests/e2e/interop.rs: the legacy RFC 6120 path (no SASL2 in slixmpp).

    python slix.py send    --host H --port P --jid alice@localhost/slix --password PW --to bob@localhost [--body T]
        logs in, sends T to --to and closes the stream cleanly.
    python slix.py receive --host H --port P --jid bob@localhost/slix --password PW [--from A] [--body T]
        logs in, prints "online", then exits 0 once a message (matching --from/--body) arrives.
    --direct-tls connects with direct TLS instead of STARTTLS; --mech M allows only SASL mechanism M.

stdout: one JSON object per line, for the Rust test to parse:
    {"event":"online","jid":…,"mechanism":…,"legacy_sasl":bool,"legacy_bind":bool,"sasl2":bool,"tls":…}
    {"event":"message","from":…,"body":…}   {"event":"sent","to":…,"body":…}
    {"event":"error","error":…}
"mechanism" is the one named in the <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'> the client
sent; "legacy_bind" is true when it sent an RFC 6120 <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>
IQ; "sasl2" when it sent a SASL2 <authenticate> (it must not: slixmpp has no SASL2).
stderr: slixmpp's debug log, which has the raw XML exchange (SEND:/RECV: lines).

The server's certificate is self-signed: no certificate check. TLS 1.3 is required, since slixmpp
on TLS 1.2 would pick SCRAM-*-PLUS with tls-unique (which the server does not do), and on TLS 1.3
it falls back to plain SCRAM as Python's ssl has no tls-exporter. Bounded by --timeout (seconds).
"""

import argparse
import asyncio
import json
import logging
import re
import ssl
import sys

import slixmpp

import loopback_tls


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Trace(logging.Handler):
    """Copies slixmpp's debug log to stderr and notes what the client sent."""

    AUTH = re.compile(r"<auth [^>]*xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"[^>]*>")
    MECH = re.compile(r"mechanism=\"([^\"]+)\"")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.mechanism = None
        self.legacy_sasl = False
        self.legacy_bind = False
        self.sasl2 = False
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record):
        text = self.format(record)
        sys.stderr.write(text + "\n")
        message = record.getMessage()
        if not message.startswith("SEND:"):
            return
        auth = self.AUTH.search(message)
        if auth:
            self.legacy_sasl = True
            mech = self.MECH.search(auth.group(0))
            self.mechanism = mech.group(1) if mech else None
        if "urn:ietf:params:xml:ns:xmpp-bind" in message:
            self.legacy_bind = True
        if "urn:xmpp:sasl:2" in message and "<authenticate" in message:
            self.sasl2 = True


class Client(slixmpp.ClientXMPP):
    def __init__(self, args, trace, done):
        super().__init__(args.jid, args.password, sasl_mech=args.mech)
        self.args = args
        self.trace = trace
        self.done = done
        self.closing = False
        self.ssl_context = loopback_tls.context()
        self.ca_certs = None
        self.enable_direct_tls = args.direct_tls
        self.enable_starttls = not args.direct_tls
        self.enable_plaintext = False
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("disconnected", self.on_disconnected)

    def fail(self, error):
        emit({"event": "error", "error": error})
        if not self.done.done():
            self.done.set_result(1)

    async def on_session_start(self, _event):
        self.send_presence()
        tls = self.socket.version() if isinstance(self.socket, (ssl.SSLSocket, ssl.SSLObject)) else None
        emit(
            {
                "event": "online",
                "jid": str(self.boundjid.full),
                "resource": self.boundjid.resource,
                "mechanism": self.trace.mechanism,
                "legacy_sasl": self.trace.legacy_sasl,
                "legacy_bind": self.trace.legacy_bind,
                "sasl2": self.trace.sasl2,
                "tls": tls,
            }
        )
        if self.args.mode == "send":
            self.send_message(mto=self.args.to, mbody=self.args.body, mtype="chat")
            emit({"event": "sent", "to": self.args.to, "body": self.args.body})
            # disconnect() waits for the send queue to drain before closing the stream.
            self.closing = True
            await self.disconnect(wait=5.0)
            if not self.done.done():
                self.done.set_result(0)

    def on_message(self, msg):
        body = msg["body"]
        if not body:
            return
        sender = str(msg["from"])
        emit({"event": "message", "from": sender, "body": body})
        if self.args.mode != "receive":
            return
        if (self.args.sender is None or sender.split("/")[0] == self.args.sender) and body == self.args.body:
            if not self.done.done():
                self.done.set_result(0)

    def on_failed_auth(self, _event):
        self.fail("authentication failed")

    def on_stream_error(self, error):
        self.fail(f"stream error: {error}")

    def on_disconnected(self, reason):
        if not self.closing and not self.done.done():
            self.fail(f"disconnected: {reason}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["send", "receive"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--to")
    parser.add_argument("--from", dest="sender")
    parser.add_argument("--body", default="hello from slixmpp")
    parser.add_argument("--direct-tls", action="store_true")
    parser.add_argument("--mech", help="the only SASL mechanism to use (default: slixmpp's choice)")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    if args.mode == "send" and not args.to:
        parser.error("send needs --to")

    trace = Trace()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(trace)

    done = asyncio.get_running_loop().create_future()
    xmpp = Client(args, trace, done)
    xmpp.connect(args.host, args.port)
    try:
        code = await asyncio.wait_for(done, args.timeout)
    except asyncio.TimeoutError:
        emit({"event": "error", "error": f"timed out after {args.timeout} s"})
        code = 3
    if code != 0 or args.mode == "receive":
        xmpp.closing = True
        try:
            await asyncio.wait_for(xmpp.disconnect(wait=2.0), 5.0)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
