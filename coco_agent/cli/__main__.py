"""`python -m coco_agent.cli ARGS`: the same as `coco ARGS`."""

from coco_agent.cli import main

raise SystemExit(main())
