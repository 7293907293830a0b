"""The flows shipped ready to use (``automationTemplates``, ``createAutomationFlowFromTemplate``).
Each is an ordinary definition: made from a template, a flow can be changed like any other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    definition: dict[str, Any]


def _mail(subject: str, text: str) -> dict[str, Any]:
    return {"subject": subject, "text": text}


TEMPLATES: dict[str, Template] = {t.key: t for t in (
    Template(
        "welcome", "Welcome with a coupon",
        "On registration (customer.created): a single-use 10% coupon and a welcome mail naming it; a reminder "
        "after 3 days if no order came. A paid order is the goal: it ends the flow and counts as a conversion "
        "(the flow waits up to the coupon's 30 days for an order placed in the first 3 days to be paid).",
        {
            "trigger": {"kind": "EVENT", "eventType": "customer.created"},
            "steps": [
                {"key": "coupon", "type": "ACTION", "action": "issue_coupon",
                 "params": {"percentOff": "10", "validDays": 30, "prefix": "WELCOME-"}},
                {"key": "welcome", "type": "ACTION", "action": "send_email", "params": _mail(
                    "Welcome, {{ customer.first_name or customer.display_name }}",
                    "Hello {{ customer.first_name or customer.display_name }},\n\nwelcome! Your code "
                    "{{ results.coupon.code }} takes 10% off your first order for 30 days.\n")},
                {"key": "wait-order", "type": "WAIT_FOR_EVENT", "eventType": "order.created",
                 "timeout": {"days": 3}, "next": "wait-paid", "timedOut": "reminder"},
                {"key": "wait-paid", "type": "WAIT_FOR_EVENT", "eventType": "order.paid",
                 "timeout": {"days": 30}, "next": None, "timedOut": None},
                {"key": "reminder", "type": "ACTION", "action": "send_email", "params": _mail(
                    "Your welcome code is waiting",
                    "Hello {{ customer.first_name or customer.display_name }},\n\na reminder: "
                    "{{ results.coupon.code }} still takes 10% off your first order.\n")},
            ],
            "enrolmentRule": {"messageCap": 3, "messageCapDays": 7},
            "goal": {"eventType": "order.paid"},
        },
    ),
    Template(
        "win-back", "Win back quiet customers",
        "A customer whose last order is 90 days old gets a 15% coupon by mail; if no order comes within 14 days, "
        "their owner gets a task to call them. Again after 180 days at the earliest; a paid order is the goal.",
        {
            "trigger": {"kind": "INACTIVITY", "inactiveDays": 90},
            "steps": [
                {"key": "coupon", "type": "ACTION", "action": "issue_coupon",
                 "params": {"percentOff": "15", "validDays": 21, "prefix": "BACK-"}},
                {"key": "offer", "type": "ACTION", "action": "send_email", "params": _mail(
                    "We miss you, {{ customer.first_name or customer.display_name }}",
                    "It has been a while. {{ results.coupon.code }} takes 15% off your next order for three weeks.\n")},
                {"key": "wait-order", "type": "WAIT_FOR_EVENT", "eventType": "order.created",
                 "timeout": {"days": 14}, "next": None, "timedOut": "call"},
                {"key": "call", "type": "ACTION", "action": "create_task", "params": {
                    "subject": "Call {{ customer.display_name }}: no order since the win-back offer",
                    "assignTo": "OWNER", "dueInDays": 2}},
            ],
            "enrolmentRule": {"reenrolAfterDays": 180},
            "goal": {"eventType": "order.paid"},
        },
    ),
    Template(
        "birthday-points", "Birthday points",
        "At 09:00 on the customer's birthday, in their time zone: 100 loyalty points and a mail saying so.",
        {
            "trigger": {"kind": "DATE", "dateField": "birthday", "atTime": "09:00"},
            "steps": [
                {"key": "points", "type": "ACTION", "action": "award_points",
                 "params": {"points": 100, "reason": "birthday"}},
                {"key": "greeting", "type": "ACTION", "action": "send_email", "params": _mail(
                    "Happy birthday, {{ customer.first_name or customer.display_name }}!",
                    "Happy birthday! We have added 100 points to your account.\n")},
            ],
            "enrolmentRule": {"reenrolAfterDays": 300},
        },
    ),
    Template(
        "satisfaction-follow-up", "Follow up a low rating",
        "When a customer rates a resolved ticket 1 or 2 out of 5: a task for their owner to call them and a mail "
        "saying someone will.",
        {
            "trigger": {"kind": "EVENT", "eventType": "ticket.rated",
                        "conditions": [{"path": "rating", "op": "LTE", "value": 2}]},
            "steps": [
                {"key": "task", "type": "ACTION", "action": "create_task", "params": {
                    "subject": "Low rating ({{ trigger.data.rating }}/5) on {{ trigger.data.number }}: call "
                               "{{ customer.display_name }}", "assignTo": "OWNER", "dueInDays": 1}},
                {"key": "apology", "type": "ACTION", "action": "send_email", "params": _mail(
                    "About your request {{ trigger.data.number }}",
                    "Hello {{ customer.first_name or customer.display_name }},\n\nwe are sorry we did not do better. "
                    "Someone from our team will call you shortly.\n")},
            ],
            "enrolmentRule": {"reenrolAfterDays": 1},
        },
    ),
)}
