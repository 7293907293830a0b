"""Tables of the support domain."""
