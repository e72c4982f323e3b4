"""coco_worker: what runs inside the sandbox. `python3 -I -B <bundle>` runs __main__.py beside this package.

protocol.py is not in the repository's copy of this package: it is coco_agent/sandbox/protocol.py, copied in
when the bundle is made (coco_agent/sandbox/bundle.py), so host and worker share one source.
"""
