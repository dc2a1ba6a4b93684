"""Failed sign-ins counted per client address, so that guessing passwords or tokens costs time.

Every way in that takes a secret (the admin's login form, an API token, basic authentication when
enabled) asks ``wait`` before checking it and calls ``failed`` when it was wrong. After
``LEDGER_SIGNIN_FAILURES`` failures within ``LEDGER_SIGNIN_WINDOW`` seconds of the first, every
attempt from that address is refused until the window ends, with the seconds left to say in
Retry-After; right credentials too, or a guesser would learn which guess was right.

The counts live in Django's cache: a fixed window per address (two keys that expire with it).
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

_PREFIX = "ledger:signin-failures:"


def client_address(request: HttpRequest) -> str:
    """The caller's address: the connection's, or with ``LEDGER_NUM_PROXIES`` proxies in front the
    entry of X-Forwarded-For the nearest of them wrote (the ones before it are the client's word)."""
    proxies = settings.LEDGER_NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return str(request.META.get("REMOTE_ADDR", ""))


def wait(address: str) -> int | None:
    """Seconds until ``address`` may sign in again, or None if it may now."""
    counts = cache.get_many([_PREFIX + address, _PREFIX + address + ":since"])
    failures, since = counts.get(_PREFIX + address, 0), counts.get(_PREFIX + address + ":since")
    if failures < settings.LEDGER_SIGNIN_FAILURES or since is None:
        return None
    left = since + settings.LEDGER_SIGNIN_WINDOW - time.time()
    return max(1, math.ceil(left)) if left > 0 else None


def failed(address: str) -> None:
    """Count a failed sign-in from ``address``; the first of a window starts it."""
    window = settings.LEDGER_SIGNIN_WINDOW
    key = _PREFIX + address
    if cache.add(key + ":since", time.time(), timeout=window):
        cache.set(key, 0, timeout=window)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls: this failure starts a new window
        cache.set(key + ":since", time.time(), timeout=window)
        cache.set(key, 1, timeout=window)
