"""Our implementation's cases, printed next to the floors with the ratio case / floor.

Add callables to ``CASES``. Each takes the subject lot id (an ``int``: a lot of any level whose
forward reach is ~10k / ~100k / ~1M units, or the lot that reaches most) and returns the elapsed
time of the operation in milliseconds. Do setup and cleanup (e.g. deleting an earlier run's
results) outside the timed part, and time only the operation. Django is configured against the
bench database before this module is imported, so cases may use the ORM and the services.

Optional attributes on the callable:
* ``name``: the label printed (default: the function's ``__name__``);
* ``floor``: which floor the ratio is taken against, one of ``"write"`` (default: walk + segments
  + write the affected unit ids), ``"count"`` (count the affected units), ``"consignees"``
  (consignees of the affected units) or ``"walk"`` (the lot graph walk alone).

Each case runs once untimed, then ``--runs`` times; the median is printed. Example::

    def trace_run(lot_id: int) -> float:
        ...  # prepare
        started = time.perf_counter()
        run_the_trace(lot_id)
        return (time.perf_counter() - started) * 1000

    trace_run.name = "trace run (service)"
    CASES.append(trace_run)
"""

from __future__ import annotations

from collections.abc import Callable

CASES: list[Callable[[int], float]] = []
