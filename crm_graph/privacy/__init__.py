"""Privacy requests: export everything held on a customer, erase a customer's personal data."""
