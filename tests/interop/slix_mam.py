"""slixmpp driver for the archive tests of tests/e2e/mam.rs: XEP-0313 through slixmpp's own
xep_0313 (queries, RSM paging through xep_0059) and xep_0441 (preferences) plugins.

    python slix_mam.py history --host H --port P --a JID:PW [--page N] [--with JID]
        logs in and pages the whole archive, N results per page (default 4), oldest first;
        prints each result, then {"event":"done","count":…}.
    python slix_mam.py prefs --host H --port P --a JID:PW --default D [--never JID …] [--always JID …]
        logs in, sets the preferences, reads them back and prints them.

stdout: one JSON object per line:
    {"event":"online","who":…}  {"event":"result","id":…,"from":…,"to":…,"body":…,"stamp":…}
    {"event":"prefs","default":…,"always":[…],"never":[…]}  {"event":"done",…}
    {"event":"error","error":…}
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
    def __init__(self, jid, password, work):
        super().__init__(jid, password)
        loopback_tls.direct_tls(self)
        self.work = work
        self.outcome = asyncio.get_event_loop().create_future()
        for plugin in ("xep_0059", "xep_0313", "xep_0441"):
            self.register_plugin(plugin)
        self.add_event_handler("session_start", self.session_start)
        self.add_event_handler("failed_auth", lambda _e: self.finish("authentication failed"))
        self.add_event_handler("stream_error", lambda e: self.finish(f"stream error: {e}"))

    def finish(self, error=None):
        if not self.outcome.done():
            self.outcome.set_result(error)

    async def session_start(self, _event):
        emit({"event": "online", "who": str(self.boundjid)})
        try:
            await self.work(self)
            self.finish()
        except Exception as e:  # noqa: BLE001 - reported to the test
            logging.exception("work failed")
            self.finish(f"{type(e).__name__}: {e}")


async def history(c, args):
    count = 0
    with_jid = slixmpp.JID(args.with_jid) if args.with_jid else None
    async for msg in c["xep_0313"].iterate(with_jid=with_jid, rsm={"max": args.page}):
        forwarded = msg["mam_result"]["forwarded"]
        inner = forwarded["stanza"]
        emit(
            {
                "event": "result",
                "id": msg["mam_result"]["id"],
                "from": str(inner["from"]),
                "to": str(inner["to"]),
                "body": inner["body"],
                "stamp": str(forwarded["delay"]["stamp"]),
            }
        )
        count += 1
    emit({"event": "done", "count": count})


async def prefs(c, args):
    await c["xep_0441"].set_preferences(
        default=args.default,
        always=[slixmpp.JID(j) for j in args.always],
        never=[slixmpp.JID(j) for j in args.never],
    )
    default, always, never = await c["xep_0441"].get_preferences()
    emit(
        {
            "event": "prefs",
            "default": default,
            "always": sorted(str(j) for j in always),
            "never": sorted(str(j) for j in never),
        }
    )
    emit({"event": "done"})


async def run(args):
    jid, _, password = args.a.partition(":")
    work = {"history": history, "prefs": prefs}[args.mode]
    c = Client(jid, password, lambda c: work(c, args))
    c.connect(host=args.host, port=args.port)
    try:
        error = await asyncio.wait_for(c.outcome, args.timeout)
    except asyncio.TimeoutError:
        error = f"timed out after {args.timeout} s"
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
    parser.add_argument("mode", choices=["history", "prefs"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--a", required=True, help="JID:PASSWORD")
    parser.add_argument("--page", type=int, default=4)
    parser.add_argument("--with", dest="with_jid")
    parser.add_argument("--default", default="always")
    parser.add_argument("--always", action="append", default=[])
    parser.add_argument("--never", action="append", default=[])
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
