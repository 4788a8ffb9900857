"""slixmpp driver for the stream-management tests of tests/e2e/smacks.rs: XEP-0198 through
slixmpp's own xep_0198 plugin (acknowledgements, and resumption after a lost connection).

    python slix_sm.py resume --host H --port P --a JID:PW --expect N
        logs in (stream management enabled with resumption), sends initial presence and prints
        "online" with its JID and SM id once the server enabled stream management; whenever the connection is lost it connects again, and
        the plugin resumes the stream; exits 0 once N messages with a body arrived, after
        asking the server for an acknowledgement of what it sent.

stdout: one JSON object per line:
    {"event":"online","jid":…,"sm_id":…}  {"event":"message","body":…,"delay":stamp-or-null}
    {"event":"disconnected"}  {"event":"resumed","h":…}  {"event":"sm_failed"}
    {"event":"done","bodies":[…]}  {"event":"error","error":…}
stderr: slixmpp's debug log (the raw XML exchange). Bounded by --timeout (seconds).
"""

import argparse
import asyncio
import json
import logging
import sys

import slixmpp

import loopback_tls


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, args):
        super().__init__(jid, password)
        loopback_tls.direct_tls(self)
        self.args = args
        self.bodies = []
        self.finishing = False
        self.outcome = asyncio.get_event_loop().create_future()
        self.register_plugin("xep_0198")
        self["xep_0198"].allow_resume = True
        self.add_event_handler("session_start", lambda _e: self.send_presence())
        self.add_event_handler("sm_enabled", self.enabled)
        self.add_event_handler("session_resumed", self.resumed)
        self.add_event_handler("sm_failed", lambda _e: emit({"event": "sm_failed"}))
        self.add_event_handler("message", self.message)
        self.add_event_handler("disconnected", self.lost)
        self.add_event_handler("failed_auth", lambda _e: self.finish("authentication failed"))
        self.add_event_handler("stream_error", lambda e: self.finish(f"stream error: {e}"))

    def finish(self, error=None):
        if not self.outcome.done():
            self.outcome.set_result(error)

    def enabled(self, _stanza):
        emit({"event": "online", "jid": str(self.boundjid), "sm_id": self["xep_0198"].sm_id})

    def resumed(self, stanza):
        emit({"event": "resumed", "h": int(stanza["h"])})

    def message(self, msg):
        if not msg["body"]:
            return
        delay = msg["delay"]["stamp"] if msg.xml.find("{urn:xmpp:delay}delay") is not None else None
        emit({"event": "message", "body": msg["body"], "delay": str(delay) if delay else None})
        self.bodies.append(msg["body"])
        if len(self.bodies) >= self.args.expect:
            self.finish()

    def lost(self, _event):
        if self.finishing or self.outcome.done():
            return
        emit({"event": "disconnected"})
        # Back through the same address: the stream-management plugin resumes.
        asyncio.get_event_loop().call_later(0.2, lambda: self.connect(self.args.host, self.args.port))


async def run(args):
    jid, _, password = args.a.partition(":")
    c = Client(jid, password, args)
    c.connect(args.host, args.port)
    try:
        error = await asyncio.wait_for(c.outcome, args.timeout)
    except asyncio.TimeoutError:
        error = f"timed out after {args.timeout} s with {c.bodies}"
    c.finishing = True
    if not error:
        # Acknowledge what arrived (so nothing is handed on when the stream closes).
        c["xep_0198"].send_ack()
        emit({"event": "done", "bodies": c.bodies})
    try:
        await asyncio.wait_for(c.disconnect(wait=2.0), 5.0)
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass
    if error:
        emit({"event": "error", "error": error})
        return 1
    return 0


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["resume"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--a", required=True, help="JID:PASSWORD")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return await run(args)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
