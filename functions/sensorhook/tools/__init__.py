"""Operator command-line tools (run with `python -m sensorhook.tools.<name>`)."""
