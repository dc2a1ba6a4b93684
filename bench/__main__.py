"""python -m bench [--units N] [--runs 5]: build or reuse the bench world, print its sizes, the floors,
the naive loop and the project's cases (bench/cases.py) with their ratio to the floor."""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from bench import db


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def _print_world(info: dict) -> None:
    print("\nWorld (rows; heap and index sizes in MB)")
    print(f"  {'table':30} {'rows':>12} {'heap':>8} {'indexes':>8}")
    for table, rows, heap, indexes in info["sizes"]:
        print(f"  {table:30} {rows:>12,} {_mb(heap):>8} {_mb(indexes):>8}")
    extra = info["extra"]
    print(
        f"  database size on disk: {info['db_size'] / 2**30:.2f} GiB; consignees reached: "
        f"{info['consignees_reached']:,}; unit-lot pairs: {int(extra.get('unit_lot_pairs', 0)):,}; "
        f"loose cartons: {int(extra.get('loose_cartons', 0)):,}"
    )
    stats = info["stats"]
    if not stats:
        return
    copy = {t: (rows, s) for step, t, _o, rows, s in stats if step == "copy"}
    index = defaultdict(float)
    for step, t, _o, _rows, s in stats:
        if step == "index":
            index[t] += s
    fks = defaultdict(float)
    for step, t, _o, _rows, s in stats:
        if step == "foreign key":
            fks[t] += s
    print("\nBuild (last build of this world)")
    print(f"  {'table':30} {'rows':>12} {'COPY s':>8} {'rows/s':>10} {'keys+idx s':>10} {'FKs s':>7} {'total s':>8}")
    for t, (rows, s) in copy.items():
        total = s + index[t] + fks[t]
        print(
            f"  {t:30} {rows:>12,} {s:>8.1f} {rows / max(s, 1e-9):>10,.0f} {index[t]:>10.1f} {fks[t]:>7.1f} "
            f"{total:>8.1f}"
        )
    other = {step: s for step, _t, _o, _r, s in stats if step in ("plan", "sequences", "vacuum analyze", "total")}
    print("  " + "; ".join(f"{k} {v:.1f} s" for k, v in other.items()))
    sizes = {name: size for _t, name, size in info["index_sizes"]}
    costly = sorted((s, t, o) for step, t, o, _r, s in stats if step == "index")[::-1][:12]
    print("\n  Costliest keys and indexes to build (s, MB)")
    for s, t, o in costly:
        print(f"    {s:7.1f} s {_mb(sizes.get(o, 0)):>7} MB  {t}.{o}")


def _fmt(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:,.1f}" if ms < 100 else f"{ms:,.0f}"


def _named(name: str, only: list[str] | None) -> bool:
    """Whether ``--only`` selects what is called ``name`` (any of its words, case-insensitive)."""
    return only is None or any(word.lower() in name.lower() for word in only)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--units", type=int, default=10_000_000, help="units in the world (default 10,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure; medians are printed (default 5)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the world even if it is there")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive ORM loop (slow)")
    parser.add_argument("--no-cases", action="store_true", help="skip the cases of bench/cases.py")
    parser.add_argument("--world-only", action="store_true", help="build or reuse the world, print it, stop")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        help=(
            "run only the cases whose name contains NAME (case-insensitive; repeatable), and only the floors"
            ' they are compared with; "fixed costs" and "audit" name those figures. Skips the naive loop'
        ),
    )
    parser.add_argument(
        "--subject", metavar="LABEL", action="append", help="only subject LABEL (10k, 100k, 1M, largest; repeatable)"
    )
    args = parser.parse_args()

    db.django_setup()  # before the world (it uses traceability.genealogy.writes) and the cases (they may use the ORM)
    from bench import floors, naive, world

    params = world.Params(units=args.units, seed=args.seed)
    print(f"bench database: {db.db_name(db.bench_url())}")
    with db.connect() as conn:
        (autovacuum,) = conn.execute("SHOW autovacuum").fetchone()
    if autovacuum != "on":
        print("  autovacuum is off on this server: the cases analyse the tables their findings and runs write")
    info = world.ensure_world(params, rebuild=args.rebuild)
    _print_world(info)
    report: dict = {"world": params.marker, "db_size": info["db_size"], "sizes": info["sizes"], "build": info["stats"]}
    if args.world_only:
        return _dump(args.json, report)

    cases: list = []
    if not args.no_cases:
        from bench.cases import CASES

        cases = [case for case in CASES if _named(getattr(case, "name", case.__name__), args.only)]
    wanted = None if args.only is None else frozenset(getattr(case, "floor", "write") for case in cases)
    with db.connect() as conn:
        subjects = [s for s in floors.subjects(conn) if not args.subject or s.label in args.subject]
        print(f"\nFloors: bare SQL, median of {args.runs} runs, ms")
        head = (
            f"  {'subject':8} {'lot':22} {'lots':>6} {'segments':>8} {'units':>10} {'walk':>7} {'count':>7} "
            f"{'count(m)':>8} {'write ids':>9} {'consignees':>10} {'per unit':>9} {'#cons':>6}"
        )
        print(head)
        results = {}
        for s in subjects:
            started = time.perf_counter()
            r = floors.measure(conn, s, runs=args.runs, only=wanted)
            results[s.label] = r
            lot = f"{s.lot_kind} {s.lot_code}"
            print(
                f"  {s.label:8} {lot:22} {s.lots:>6,} {s.segments:>8,} {s.units:>10,} {_fmt(r['walk']):>7} "
                f"{_fmt(r.get('count')):>7} {_fmt(r.get('count_members')):>8} {_fmt(r.get('write')):>9} "
                f"{_fmt(r.get('consignees')):>10} {_fmt(r.get('consignees_per_unit')):>9} "
                f"{r.get('consignees_found', 0):>6,}"
                f"   ({time.perf_counter() - started:.0f} s)"
            )
        report["subjects"] = [s.__dict__ for s in subjects]
        report["floors"] = results

    if not args.no_naive and args.only is None:
        slice_ = min(subjects, key=lambda s: abs(s.units - 100_000))
        print(f"\nNaive ORM loop on the {slice_.label} subject (lot {slice_.lot_id}, {slice_.units:,} units), once:")
        run = naive.naive_trace(slice_.lot_id)
        if run.units != slice_.units:
            raise SystemExit(f"the naive loop found {run.units} units, the floor {slice_.units}")
        floor = results[slice_.label]["write"]
        print(
            f"  {run.ms / 1000:,.1f} s, {run.queries:,} queries, {run.units:,} units: "
            f"{run.ms / floor:,.0f}x the floor's {_fmt(floor)} ms"
        )
        report["naive"] = run.__dict__ | {"subject": slice_.label, "floor_ms": floor}

    if args.no_cases:
        return _dump(args.json, report)
    from bench.cases import audit_costs, fixed_costs, trace_end_to_end
    from traceability.core.runtime import heap_settle

    heap_settle(urls=True)  # what the web process does once loaded (traceability/wsgi.py), as its worker does

    print(f"\nCases (bench/cases.py): {len(cases)}")
    report["cases"] = []
    for case in cases:
        name = getattr(case, "name", case.__name__)
        floor_key = getattr(case, "floor", "write")
        for s in subjects:
            ms = floors.median_ms(lambda c=case, lot=s.lot_id: c(lot), args.runs)
            floor = results[s.label][floor_key]
            print(
                f"  {name:42} {s.label:8} {_fmt(ms):>9} ms   floor ({floor_key}) {_fmt(floor):>8} ms   "
                f"{ms / floor:6.1f}x"
            )
            report["cases"].append({"case": name, "subject": s.label, "ms": ms, "floor": floor_key, "floor_ms": floor})

    if _named("fixed costs", args.only):
        _print_fixed_costs(fixed_costs(args.runs), args.runs, report, trace_end_to_end.name)
    if _named("audit", args.only):
        _print_audit(audit_costs(args.runs), report)
    _dump(args.json, report)


def _print_fixed_costs(fixed: dict[str, float], runs: int, report: dict, end_to_end: str) -> None:
    report["fixed_costs"] = fixed
    print(
        f"\nFixed costs, median of {runs}: finding → run persisted for a lot reaching no unit "
        f"{_fmt(fixed['empty'])} ms; Celery round trip (control ping to the worker) {_fmt(fixed['ping'])} ms"
    )
    print("  end to end less the fixed cost, against the floor:")
    for row in report["cases"]:
        if row["case"] == end_to_end:
            above = row["ms"] - fixed["empty"]
            print(
                f"    {row['subject']:8} {_fmt(row['ms']):>9} ms - {_fmt(fixed['empty'])} = {_fmt(above):>9} ms"
                f"   floor {_fmt(row['floor_ms']):>8} ms   {above / row['floor_ms']:6.1f}x"
            )


def _print_audit(audit: dict[str, float], report: dict) -> None:
    report["audit"] = audit
    print(
        f"\nAudit trail, medians: an entry appended alone {audit['alone']:.2f} ms (rolled back); inside a write's"
        f" transaction {audit['in_write']:.2f} ms; a regulator's REST read {audit['read_with']:.2f} ms with"
        f" its entry, {audit['read_without']:.2f} ms without: {audit['added']:.2f} ms added"
    )


def _dump(path: str | None, report: dict) -> None:
    if path:
        with open(path, "w") as fh:
            json.dump(report, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
