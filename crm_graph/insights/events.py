"""The event types of the insights domain (docs/events.md). They are about a customer: their
entity is the ``Customer``, so webhooks and automation flows see them as the customer's."""

from crm_graph.core.events import register_event_type

for _type, _words in (
    ("customer.churn_risk_raised", "A customer newly became a churn risk: recency and frequency scores fell between the "
                                   "two latest RFM runs and the probability alive is low (`data.recencyScore`, "
                                   "`data.frequencyScore`, `data.probabilityAlive`, `data.monetary`, `data.clv`)."),
    ("customer.lifecycle_changed", "A customer's lifecycle stage changed (`data.from`, `data.to`: EXPLORATION, FORMATION, "
                                   "STABILITY, DECLINE, CHURNED or null; `data.source`: RUN, PIN or UNPIN)."),
):
    register_event_type(_type, _words)
