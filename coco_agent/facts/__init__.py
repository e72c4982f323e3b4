"""The facts check: the numbers, labels and strings a prompt states, compared with what the program drew (the
facts the sandbox reports, coco_worker/facts.py), with no judge model.

- ``claims``: what the prompt states, read only where it can be read with certainty.
- ``check``: the claims against the facts: precise problems ("bar 'Q3' is 105; the prompt says 150"), what was
  checked, and what was skipped and why.
- ``regions``: after refinement, each text box the program drew read again by OCR in the final image.
"""
