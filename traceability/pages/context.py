from collections.abc import Callable

from django.http import HttpRequest

from traceability.pages.caller import PageCaller, page_caller


def navigation(request: HttpRequest) -> dict[str, Callable[[], PageCaller | None]]:
    """What every page's header shows: the caller's organisation and the switcher's choices. Lazy:
    read only by a template that shows it (the admin's and the API's pages never do)."""
    return {"page_caller": lambda: page_caller(request)}
