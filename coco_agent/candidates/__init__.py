"""Candidates (``--candidates N``): the deterministic ranking of a round's programs (``ranking``) and the
side-by-side image the critic chooses from (``montage``). The graph's side is nodes/candidate.py (one
candidate rendered and checked, N in parallel) and nodes/select.py (the ranking applied, the round routed)."""
