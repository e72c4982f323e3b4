"""Graph nodes, one module each. Every node is wrapped by ``trace.traced`` (timing + trace line)."""
