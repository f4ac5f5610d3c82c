"""Operator tooling run from a workstation, not from Lambda: explain, failures, replays, backfills.

``kauto-ops --help`` (:mod:`kauto_ops.cli`) lists the commands; ``kauto-backfill`` (:mod:`kauto_ops.backfill`) keeps
the backfill and replay commands it always had.
"""
