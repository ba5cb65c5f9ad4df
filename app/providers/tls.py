"""The process's one TLS context for the providers' HTTP clients.

An httpx client made without one builds its own, reading the CA bundle again: ~20 ms of the event
loop on a fast machine, 50-70 ms on a slower one, for every call whose SDK client is made per call
(Deepgram's REST client, Anthropic's). With 50 calls starting, that is seconds of every other
call's audio waiting. The context is only read once made, so the calls share it."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
