"""The TLS context of every slixmpp driver against the test server on loopback: its certificate
is self-signed, so nothing is checked; TLS 1.3 only unless told otherwise (on TLS 1.2 slixmpp
would pick SCRAM-*-PLUS with tls-unique, which the server does not offer)."""

import ssl


def context(tls13_only=True):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls13_only:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def direct_tls(client, tls13_only=True):
    """Set a slixmpp client to connect with direct TLS (XEP-0368) only, with [`context`]."""
    client.ssl_context = context(tls13_only)
    client.enable_direct_tls = True
    client.enable_starttls = False
    client.enable_plaintext = False
