"""The event types of the loyalty domain (docs/events.md). Points and coupons are about a
customer: their entity is the ``Customer``, so webhooks and flows see them as the customer's."""

from crm_graph.core.events import register_event_type

for _type, _words in (
    ("loyalty.points_earned", "A customer earned points (`data.points`, `data.source`: `payment:<id>`, `event:<id>`, "
                              "`api`, `automation:<flow>`; `data.availableAt` after the return window)."),
    ("loyalty.points_redeemed", "A customer spent points on a reward (`data.couponCode`) or an order (`data.orderId`)."),
    ("loyalty.points_adjusted", "Points were corrected by hand (`data.points`, signed; `data.reason`)."),
    ("loyalty.points_reversed", "A refund or cancellation took back points the order earned (`data.shortfall`: "
                                "what was already spent and could not be taken)."),
    ("loyalty.points_restored", "A refund or cancellation gave back points that were spent on the order."),
    ("loyalty.points_expired", "Unspent points of one award expired."),
    ("loyalty.points_expiring", "A customer's points expire soon (`data.points`, `data.expiresAt`: the first expiry)."),
    ("loyalty.tier_changed", "A customer moved to another tier (`data.from`, `data.to`, `data.direction` UP or DOWN)."),
    ("coupon.issued", "A single-use coupon was issued to a customer (`data.code`)."),
    ("coupon.redeemed", "A coupon was used on an order (`data.code`, `data.orderId`)."),
    ("coupon.batch_generated", "A batch of unassigned coupon codes was generated (`data.batch`, `data.count`)."),
    ("loyalty_tier.saved", "A loyalty tier was created or changed."),
    ("loyalty_rule.saved", "A loyalty earning rule was created or changed."),
    ("loyalty_reward.saved", "A loyalty reward was created or changed."),
):
    register_event_type(_type, _words)
