"""Background work as Procrastinate jobs on the service's PostgreSQL (a face, like ``api`` and ``cli``).

* ``publish(relayer)`` — one round-trip of the outbox for one relayer key; job lock ``publish:<address>`` so exactly
  one publisher per key runs across every process; queueing lock of the same name so a burst of submissions leaves
  at most one job waiting. Enqueued by the submit transaction itself (``service.store.jobqueue``).
* ``sync`` — chain sync, lock ``sync`` (one at a time).
* periodic: a publish job for every key every ``PUBLISH_TICK_SECONDS`` (retries that came due, crash recovery), a
  sync every ``SYNC_INTERVAL_SECONDS``, and a sweep that hands the jobs of stalled workers (no heartbeat for
  ``WORKER_STALLED_SECONDS``, e.g. SIGKILLed) back to the queue.

``omatrust worker`` runs them (``service.cli.worker``); see docs/deploy.md. The task bodies live in
``service.workflows.jobs``: ``omatrust serve`` without workers runs the same functions in process
(``service.workflows.publish.InProcessJobs``).
"""
