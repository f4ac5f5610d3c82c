"""The automations: what the worker and the sweep do with Kaltura events.

- :mod:`kauto.automations.deps`: the ports every automation uses (:class:`~kauto.automations.deps.AutomationDeps`)
  and their wiring to AWS and Kaltura.
- :mod:`kauto.automations.router`: one entry point per event, with the error classification.
- :mod:`kauto.automations.captions`: REACH captions ordered exactly once when an entry becomes ready.
- :mod:`kauto.automations.tasks`: vendor task tracking, task alerts and the stuck-task check.
- :mod:`kauto.automations.sessions`, :mod:`~kauto.automations.thresholds`, :mod:`~kauto.automations.sweep`: room
  session reports, threshold alerts and the scheduled reconciliation sweep.
"""
