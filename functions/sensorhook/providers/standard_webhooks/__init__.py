"""Standard Webhooks (standardwebhooks.com): how sensorhook signs what it forwards by default."""
