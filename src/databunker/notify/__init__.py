"""Outbound messages: webhooks, email and SMS, queued in the outbox."""
