"""slixmpp driver for the IM tests of tests/e2e/im.rs: rosters, subscriptions, presence and
offline messages, with slixmpp's own roster and presence handling (auto-authorize and
auto-subscribe, its defaults, are what answer a subscription request).

    python slix_im.py befriend --host H --port P --a JID:PW --b JID:PW
        logs both in; A asks B for a subscription; B's client approves and asks back, A's client
        approves; exits 0 once each roster shows the other with subscription "both" and each
        has seen the other's available presence.
    python slix_im.py send --host H --port P --a JID:PW --to JID --body T [--body T …]
        logs in, sends the bodies in order as chat messages and closes the stream cleanly.
    python slix_im.py receive --host H --port P --a JID:PW --expect N
        logs in, prints its roster, and exits 0 once N messages with a body arrived.
    python slix_im.py carbons --host H --port P --a JID:PW --a2 JID:PW --b JID:PW
        logs in two resources of one account (both enable XEP-0280 carbons) and a contact;
        the contact writes to the bare JID, then to the first resource; the first resource
        answers; exits 0 once the second resource saw the bare message, a <received/> copy of
        the direct one and a <sent/> copy of the answer.
    python slix_im.py csi --host H --port P --a JID:PW --b JID:PW
        A goes inactive (XEP-0352); B sends A two presence updates, then a message; exits 0
        once A got the message, printing what A received after going inactive, in order.

stdout: one JSON object per line:
    {"event":"online","who":…}  {"event":"roster","who":…,"contact":…,"subscription":…}
    {"event":"presence","who":…,"from":…,"type":…}  {"event":"message","who":…,"from":…,
     "body":…,"delay":stamp-or-null,"delay_from":…}  {"event":"done"}  {"event":"error","error":…}
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


def credentials(value):
    jid, _, password = value.partition(":")
    return jid, password


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, on_online):
        super().__init__(jid, password)
        loopback_tls.direct_tls(self)
        self.who = jid.split("/")[0]
        self.on_online = on_online
        self.seen_available = set()
        self.messages = []
        self.failed = None
        self.register_plugin("xep_0203")
        self.register_plugin("xep_0280")
        self.register_plugin("xep_0352")
        self.register_plugin("xep_0199")
        self.log = []
        self.carbons = []
        self.add_event_handler("carbon_received", lambda m: self.carbon("received", m["carbon_received"]))
        self.add_event_handler("carbon_sent", lambda m: self.carbon("sent", m["carbon_sent"]))
        self.add_event_handler("session_start", self.session_start)
        self.add_event_handler("presence_available", self.presence_available)
        self.add_event_handler("message", self.message)
        # Every presence as it arrives (slixmpp's roster events skip some, e.g. delayed ones).
        self.add_event_handler(
            "presence",
            lambda p: self.log.append(("presence", str(p["from"]), p["show"]))
            if p["type"] in ("available", "away", "xa", "dnd", "chat")
            else None,
        )
        self.add_event_handler("roster_update", self.roster_update)
        self.add_event_handler("failed_auth", lambda _e: self.fail("authentication failed"))
        self.add_event_handler("stream_error", lambda e: self.fail(f"stream error: {e}"))

    def fail(self, error):
        self.failed = error
        emit({"event": "error", "who": self.who, "error": error})

    async def session_start(self, _event):
        # What a client does at login: the roster, then the initial presence.
        await self.get_roster()
        self.send_presence()
        emit({"event": "online", "who": self.who})
        self.print_roster()
        await self.on_online(self)

    def print_roster(self):
        for contact in self.client_roster:
            if contact == self.who:
                continue
            emit(
                {
                    "event": "roster",
                    "who": self.who,
                    "contact": contact,
                    "subscription": self.client_roster[contact]["subscription"],
                }
            )

    def roster_update(self, _iq):
        self.print_roster()

    def presence_available(self, presence):
        sender = str(presence["from"])
        emit({"event": "presence", "who": self.who, "from": sender, "type": "available", "show": presence["show"]})
        self.seen_available.add(sender.split("/")[0])

    def message(self, msg):
        if not msg["body"]:
            return
        delay = msg["delay"]
        stamp = delay["stamp"]
        self.messages.append(msg["body"])
        self.log.append(("message", str(msg["from"]), msg["body"]))
        emit(
            {
                "event": "message",
                "who": self.who,
                "from": str(msg["from"]),
                "body": msg["body"],
                "delay": stamp.isoformat() if stamp else None,
                "delay_from": str(delay["from"]) if stamp else None,
            }
        )

    def carbon(self, kind, inner):
        self.carbons.append((kind, inner["body"]))
        emit(
            {
                "event": "carbon",
                "who": str(self.boundjid.full),
                "kind": kind,
                "from": str(inner["from"]),
                "to": str(inner["to"]),
                "body": inner["body"],
            }
        )

    def subscription(self, contact):
        return self.client_roster[contact]["subscription"] if contact in self.client_roster else None


async def wait_until(predicate, clients, timeout):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        for c in clients:
            if c.failed:
                return False
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run(args):
    async def nothing(_client):
        pass

    if args.mode == "csi":
        (a_jid, a_pw), (b_jid, b_pw) = credentials(args.a), credentials(args.b)
        online = asyncio.Event()
        count = {"n": 0}

        async def up(_client):
            count["n"] += 1
            if count["n"] == 2:
                online.set()

        a = Client(a_jid, a_pw, up)
        b = Client(b_jid, b_pw, up)
        for c in (a, b):
            c.connect(args.host, args.port)
        await asyncio.wait_for(online.wait(), args.timeout)
        a.plugin["xep_0352"].send_inactive()
        # The server handles the nonza before the next input (XEP-0352 §4): a ping's answer
        # means A is inactive.
        await a.plugin["xep_0199"].ping(a.boundjid.domain)
        emit({"event": "inactive", "who": str(a.boundjid.full)})
        a.log.clear()
        a_full = str(a.boundjid.full)
        b.send_presence(pto=a_full, pshow="away")
        b.send_presence(pto=a_full, pshow="xa")
        await b.plugin["xep_0199"].ping(b.boundjid.domain)
        await asyncio.sleep(1.0)
        emit({"event": "held", "received": len(a.log)})
        b.send_message(mto=a_full, mbody="wake up", mtype="chat")
        ok = await wait_until(lambda: "wake up" in a.messages, (a, b), args.timeout)
        for kind, sender, what in a.log:
            emit({"event": "after-inactive", "kind": kind, "from": sender, "what": what})
        clients = (a, b)
    elif args.mode == "carbons":
        creds = [credentials(args.a), credentials(args.a2), credentials(args.b)]
        online = asyncio.Event()
        count = {"n": 0}

        async def up(_client):
            count["n"] += 1
            if count["n"] == 3:
                online.set()

        one, two, bob = (Client(j, p, up) for j, p in creds)
        for c in (one, two, bob):
            c.connect(args.host, args.port)
        await asyncio.wait_for(online.wait(), args.timeout)
        for c in (one, two):
            await c.plugin["xep_0280"].enable()
            emit({"event": "carbons-enabled", "who": str(c.boundjid.full)})
        bob.send_message(mto=one.who, mbody="to the bare JID", mtype="chat")
        ok = await wait_until(
            lambda: "to the bare JID" in one.messages and "to the bare JID" in two.messages,
            (one, two, bob),
            args.timeout,
        )
        bob.send_message(mto=str(one.boundjid.full), mbody="to one", mtype="chat")
        one.send_message(mto=bob.who, mbody="answer from one", mtype="chat")
        ok = ok and await wait_until(
            lambda: ("received", "to one") in two.carbons
            and ("sent", "answer from one") in two.carbons
            and "to one" in one.messages
            and "answer from one" in bob.messages,
            (one, two, bob),
            args.timeout,
        )
        clients = (one, two, bob)
    elif args.mode == "befriend":
        (a_jid, a_pw), (b_jid, b_pw) = credentials(args.a), credentials(args.b)
        online = asyncio.Event()
        count = {"n": 0}

        async def both_online(_client):
            count["n"] += 1
            if count["n"] == 2:
                online.set()

        a = Client(a_jid, a_pw, both_online)
        b = Client(b_jid, b_pw, both_online)
        for c in (a, b):
            c.connect(args.host, args.port)
        await asyncio.wait_for(online.wait(), args.timeout)
        a_bare, b_bare = a.who, b.who
        a.send_presence(pto=b_bare, ptype="subscribe")
        ok = await wait_until(
            lambda: a.subscription(b_bare) == "both"
            and b.subscription(a_bare) == "both"
            and b_bare in a.seen_available
            and a_bare in b.seen_available,
            (a, b),
            args.timeout,
        )
        clients = (a, b)
    else:
        jid, password = credentials(args.a)
        ready = asyncio.Event()

        async def go(_client):
            ready.set()

        c = Client(jid, password, go)
        c.connect(args.host, args.port)
        await asyncio.wait_for(ready.wait(), args.timeout)
        if args.mode == "send":
            for body in args.body:
                c.send_message(mto=args.to, mbody=body, mtype="chat")
                emit({"event": "sent", "who": c.who, "to": args.to, "body": body})
            ok = True
        else:
            ok = await wait_until(lambda: len(c.messages) >= args.expect, (c,), args.timeout)
        clients = (c,)
    for c in clients:
        try:
            await asyncio.wait_for(c.disconnect(wait=2.0), 5.0)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    if ok:
        emit({"event": "done"})
        return 0
    emit({"event": "error", "error": "timed out or failed"})
    return 1


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["befriend", "send", "receive", "carbons", "csi"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--a", required=True, help="JID:PASSWORD")
    parser.add_argument("--a2", help="JID:PASSWORD of a second resource (carbons)")
    parser.add_argument("--b", help="JID:PASSWORD (befriend, carbons)")
    parser.add_argument("--to")
    parser.add_argument("--body", action="append", default=[])
    parser.add_argument("--expect", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    try:
        return await asyncio.wait_for(run(args), args.timeout + 10)
    except asyncio.TimeoutError:
        emit({"event": "error", "error": f"timed out after {args.timeout} s"})
        return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
