"""Owners of records: who owns a customer, deal, quote, order or ticket, and reassigning them."""
