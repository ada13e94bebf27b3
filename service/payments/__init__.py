"""Reading payment evidence (transaction receipts, logs, head block) from the payment networks' JSON-RPC nodes.

No rules here: ``service.verdicts.payment`` decides what an observation proves.
"""
