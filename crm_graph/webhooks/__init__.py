"""Outbound webhooks: subscriptions of other systems to domain events, signed deliveries, and
the function receivers use to check them (``crm_graph.webhooks.signature.verify_signature``)."""
