"""coco-agent: Code as Chain-of-Thought for text-to-image."""

__version__ = "0.1.0"
