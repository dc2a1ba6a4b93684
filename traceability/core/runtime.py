"""What a long-running process does once it has loaded: the web process its WSGI application and
URLs, a Celery worker its tasks."""

from __future__ import annotations

import gc


def heap_settle(*, urls: bool = False) -> None:
    """Collect, then freeze what the process holds once loaded (Django, the apps, their modules and
    classes: ~120,000 objects; with ``urls``, every view too, imported now instead of on the first
    request), so that the garbage collector's full collections no longer walk them.

    Measured in the 10M-unit bench world: a trace of a million units leaves ~11,000 objects alive
    long enough to be promoted (the segments and lots it reached, their paths), so a full
    collection came in every second trace and took 60-85 ms on a busy machine, more than the
    trace's own work; with the loaded heap frozen, the collector took 5-10 ms per trace. Objects
    frozen are still freed by reference counting; only cycles among them would stay (a process
    loads modules once). The interpreter's documentation advises it before forking workers, which
    also keeps their pages shared.
    """
    if urls:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 (the import of every view is the point)
    gc.collect()
    gc.freeze()
