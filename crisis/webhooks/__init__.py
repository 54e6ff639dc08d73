"""Signed webhooks: endpoints organisations register, and the deliveries made to them with their records."""
