"""`python -m cli`: the same as the `sensorhook` console script."""

from cli.main import run

run()
