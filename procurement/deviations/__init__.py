"""Deviation reports (avviksmelding): a supplier's deviation reported from a phone in a minute,
followed up by the contract's avtaleforvalter to a documented closure.

`fields` (the form's steps, limits and choices as data), `model` (validation per step and for
the whole report, the attachment policy), `record` (the report, its history and status
machine), `access` (the policy), `summary` (per supplier, and the CSV export), `effects` (the
outbox's typed effects). All pure: no SQL, no Teams, no I/O.
"""
