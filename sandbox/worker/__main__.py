"""The worker bundle's entry point: `python3 -I -B /opt/coco/worker` (this folder is sys.path[0] then)."""

import sys

from coco_worker.main import main

sys.exit(main())
