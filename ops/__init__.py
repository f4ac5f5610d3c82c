"""Operator tooling run from a workstation, not from Lambda: backfills and dead-letter replay.

``python -m kauto_ops.backfill --help`` (or the ``kauto-backfill`` console script) lists the commands.
"""
