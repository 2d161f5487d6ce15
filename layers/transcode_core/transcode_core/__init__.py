"""transcode-status shared core: one normalized view of transcoding jobs across providers.

Modules, one concern each: status (canonical statuses), model (snapshots, rules of change), store (jobs
table), notify (events and outbox), pipeline (snapshots in, transitions out), http, xmlsafe, urls, times,
webhook, config, secrets, observability, chunks (batches within AWS calls' limits), providers/ (one adapter
per provider) and lambda_entry (the only module that knows Lambda).
"""

PROJECT = "transcode-status"
__version__ = "0.1.0"
