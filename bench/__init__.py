"""`make bench`: what sensorhook's hot paths cost, beside a floor measured in the same run."""
