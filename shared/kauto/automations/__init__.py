"""The automations: what the worker and the sweep do with Kaltura events.

- :mod:`kauto.automations.deps`: the ports every automation uses (:class:`~kauto.automations.deps.AutomationDeps`)
  and their wiring to AWS and Kaltura.
- :mod:`kauto.automations.router`: one entry point per event, with the error classification.
- :mod:`kauto.automations.captions`: REACH captions ordered exactly once when an entry becomes ready.
- :mod:`kauto.automations.tasks`: vendor task tracking, task alerts and the stuck-task check.
- :mod:`kauto.automations.sessions`, :mod:`~kauto.automations.thresholds`, :mod:`~kauto.automations.sweep`: room
  session reports, threshold alerts and the scheduled reconciliation sweep; a session's parts are in
  :mod:`~kauto.automations.session_events` (the session an event names), :mod:`~kauto.automations.room_reports`
  (6000-6002), :mod:`~kauto.automations.collab_reports` (chat, polls, moderation), :mod:`~kauto.automations.recordings`
  (meeting recordings as a trigger) and :mod:`~kauto.automations.session_summary` (the summary page).
"""
