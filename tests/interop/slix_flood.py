"""slixmpp driver for the delivery tests of tests/e2e/delivery.rs: a sender that floods one
recipient and keeps account of every error that comes back.

    python slix_flood.py --host H --port P --a JID:PW --to JID --count N --size BYTES
                         [--iqs K] [--presences K] --timeout T

Logs in (no initial presence: nothing but the errors is sent to it), sends N chat messages
with ids m0…m{N-1} and bodies of BYTES characters, as fast as slixmpp writes them, then K IQ
gets (ids q0…) and K directed presences (ids p0…) to the same JID. A ping round trip then
shows the server has routed all of it: {"event":"sent"}. It keeps collecting errors until a
chat message with the body "stop" arrives (sent by the test once the server has handed on
everything), then prints {"event":"report","bounced":{id: condition, …},"duplicates":[…]} and
exits 0.

stdout: one JSON object per line. stderr: warnings only (the XML of 10 000 messages is not
logged). Bounded by --timeout (seconds).
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


class Flooder(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        loopback_tls.direct_tls(self, tls13_only=False)
        self.register_plugin("xep_0199")
        self.online = asyncio.Event()
        self.stopped = asyncio.Event()
        self.bounced = {}
        self.duplicates = []
        self.add_event_handler("session_start", lambda _e: self.online.set())
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("message_error", self.on_error)
        self.add_event_handler("presence_error", self.on_error)
        self.add_event_handler("failed_auth", lambda _e: emit({"event": "error", "error": "auth"}))

    def on_message(self, msg):
        if msg["type"] == "error":
            self.on_error(msg)
        elif msg["body"] == "stop":
            self.stopped.set()

    def on_error(self, stanza):
        stanza_id = stanza["id"]
        if stanza_id in self.bounced:
            self.duplicates.append(stanza_id)
        self.bounced[stanza_id] = stanza["error"]["condition"]


async def run(args):
    jid, _, password = args.a.partition(":")
    a = Flooder(jid, password)
    # IQ errors come back as the IQs' answers.
    a.connect(args.host, args.port)
    await asyncio.wait_for(a.online.wait(), args.timeout)
    emit({"event": "online", "jid": str(a.boundjid.full)})
    body = "x" * args.size
    for i in range(args.count):
        m = a.make_message(mto=args.to, mbody=body, mtype="chat")
        m["id"] = f"m{i}"
        m.send()
    pending = []
    for i in range(args.iqs):
        iq = a.make_iq_get(queryxmlns="urn:xmpp:ping", ito=args.to)
        iq["id"] = f"q{i}"
        pending.append(asyncio.ensure_future(iq.send(timeout=args.timeout)))
    for i in range(args.presences):
        p = a.make_presence(pto=args.to, pshow="away")
        p["id"] = f"p{i}"
        p.send()
    await a.plugin["xep_0199"].ping(a.boundjid.domain, timeout=args.timeout)
    emit({"event": "sent", "messages": args.count, "iqs": args.iqs, "presences": args.presences})
    await asyncio.wait_for(a.stopped.wait(), args.timeout)
    for i, fut in enumerate(pending):
        try:
            await asyncio.wait_for(fut, 0.1)
            answer = "result"
        except slixmpp.exceptions.IqError as e:
            answer = e.iq["error"]["condition"]
        except (slixmpp.exceptions.IqTimeout, asyncio.TimeoutError):
            answer = None
        if answer is not None:
            if f"q{i}" in a.bounced:
                a.duplicates.append(f"q{i}")
            a.bounced[f"q{i}"] = answer
    emit({"event": "report", "bounced": a.bounced, "duplicates": a.duplicates})
    try:
        await asyncio.wait_for(a.disconnect(wait=2.0), 5.0)
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass
    return 0


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--a", required=True, help="JID:PASSWORD")
    parser.add_argument("--to", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--iqs", type=int, default=0)
    parser.add_argument("--presences", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        return await asyncio.wait_for(run(args), args.timeout + 10)
    except asyncio.TimeoutError:
        emit({"event": "error", "error": f"timed out after {args.timeout} s"})
        return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
