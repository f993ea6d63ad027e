"""`sensorhook`, the operator's command line: status, replay, reconcile, test deliveries, tail.

Wiring only. It finds the stack (`target.py`), reads and acts through the product's own
`sensorhook.dal` and `sensorhook.logic` (and the provider emulator's sender for test
deliveries), and prints with Rich or, with `--json`, for scripts. One module per command in
`commands/`; docs/operations.md is the manual.
"""
