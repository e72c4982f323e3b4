"""The cost ledger: every model call's tokens, latency, model and role, priced when the price is known; the
budgets a run and a batch keep; and the recorded answers `coco replay` plays back.

- ``usage``: tokens and the served model id read from a LangChain answer (``usage_metadata``).
- ``prices``: the price table (shipped ``prices.json``, overridable by ``--prices FILE`` / ``COCO_PRICES``);
  an unknown model is ``price unknown``, never a guess.
- ``records``: one record per call, ``calls.jsonl`` in the run directory (with the call's output), totals.
- ``meter``: the metered calls nodes make (``invoke``, ``invoke_structured``, ``invoke_many``).
- ``budget``: run budgets (dollars, tokens, seconds), the batch budget, and the routing gate.
- ``replay``: answers played back from a recorded run, with zero model calls.

This package's ``__init__`` imports nothing, so its modules can be imported alone.
"""
