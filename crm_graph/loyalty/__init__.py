"""Loyalty: a points ledger, earning rules, tiers, rewards and single-use coupons (docs/loyalty.md)."""
