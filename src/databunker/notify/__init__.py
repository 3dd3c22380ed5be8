"""Outbound messages: webhooks (and, later, email and SMS), queued in the outbox."""
