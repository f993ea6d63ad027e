"""One module per `sensorhook` command (or command group)."""
