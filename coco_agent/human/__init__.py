"""People in the loop: a person's program as an attempt (``program``), editing a run and continuing it as a new
branch of its checkpoint history (``edit``), and answering a run paused for review (``review``)."""
