"""Benchmarks on a synthetic world of millions of units, compared with the machine's floors.

``python -m bench`` (or ``make bench``) builds the world once in its own PostgreSQL database
(``ledger_bench``), measures the floors (bare SQL) and the naive ORM loop, and prints the
project's own cases (``bench/cases.py``) next to them. See ``bench/README.md``.
"""
