"""The marketing plugin's event types. Engagement events are on the customer (``entity`` is the
Customer; ``data.campaign`` the campaign's global ID when there is one, ``data.email`` the address);
campaign events on the campaign."""

from __future__ import annotations

from crm_graph.core.events import register_event_type

EVENT_TYPES = {
    "marketing.subscribed": "Someone signed up through the subscription form; a confirmation link was mailed (`data.list`, `data.utm`).",
    "marketing.confirmed": "A double opt-in link was followed: the customer is OPTED_IN (`data.list`).",
    "marketing.unsubscribed": "The customer unsubscribed, from every list or from `data.list` (`data.campaign` when from a campaign's link).",
    "marketing.bounced": "Mail to the customer bounced (`data.kind` HARD, SOFT or COMPLAINT; `data.suppressed`).",
    "marketing.opened": "The customer opened a campaign's mail for the first time (`data.campaign`).",
    "marketing.clicked": "The customer followed a link in a campaign's mail (`data.campaign`, `data.url`).",
    "campaign.created": "A campaign draft was made.",
    "campaign.scheduled": "A campaign was started with a future `scheduledAt`: it starts then.",
    "campaign.started": "A campaign's audience was taken and sending began (`data.audience`).",
    "campaign.paused": "A campaign's sending was paused.",
    "campaign.resumed": "A paused campaign's sending went on.",
    "campaign.cancelled": "A campaign was cancelled; what was not sent yet will not be.",
    "campaign.sent": "Every recipient of a campaign was handled (`data.sent`, `data.failed`, `data.skipped`).",
}

for _type, _description in EVENT_TYPES.items():
    register_event_type(_type, _description)
