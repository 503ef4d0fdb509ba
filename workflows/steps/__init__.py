"""The workflow steps: each is one durable transaction around the domain service(s) and the process change.

A step opens `transaction.atomic(durable=True)`, so nesting it by accident in another transaction is
an error; the domain services it calls join that transaction (`h2h_core.transactions`), and a
refusal aborts the whole step. `workflows.services` re-exports every step.
"""
