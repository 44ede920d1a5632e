"""Real proxies in front of NeverTrust for the end-to-end tests: the documented nginx and
Caddy templates, and the harness that runs them (harness.py, world.py)."""
