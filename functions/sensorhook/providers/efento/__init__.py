"""Efento Cloud measurement webhooks: batches of Measurement Events, extrapolated per period."""
