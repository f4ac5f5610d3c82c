"""Weekly scheduled reports: one run per (partner, ISO week), one job per report, streamed into S3.

Flow (EventBridge Scheduler -> scheduler function -> ReportJobsQueue -> report worker):

- :mod:`kauto.weekly.config`: the validated weekly report set (the ``weekly`` section of the automation config, with
  a bundled default set per partner).
- :mod:`kauto.weekly.scheduler`: claims the run of each partner's week and fans out one job message per report.
- :mod:`kauto.weekly.runs`: run identity in the ledger (a duplicate trigger produces one run), job rows with leases
  and steps, done/failed counters, and the one-time "all jobs finished" step that writes the manifest and sends the
  digest request (``{"type": "weekly_digest", "partner_id", "week"}``) that the job runner hands to
  :func:`digest.build_digest`.
- :mod:`kauto.weekly.jobs`: the job runner for getTable, getUrlForReportAsCsv, getCsvFromStringParams and the
  Reports Microservice, streaming through the CSV cleaner into the multipart writer, checkpointing near the Lambda
  time limit and polling the microservice by re-enqueueing itself with a delay.
- :mod:`kauto.weekly.messages` / :mod:`kauto.weekly.queue`: the queue messages and their SQS adapter;
  :mod:`kauto.weekly.deps`: the ports (:class:`~kauto.weekly.deps.WeeklyDeps`) and their wiring.

Outputs: ``weekly/partner_id=<pid>/week=<YYYY-Www>/report=<report>/<report>.csv`` (a folder per report kind, so
each Athena table reads one kind) and the run's ``manifest.json`` under ``week=<YYYY-Www>/`` (written last).
"""
