"""The privacy domain keeps no table of its own.

An erasure marks the customer itself (``customers.erased_at``, in ``crm_graph.customers.models``),
and every privacy request is in the security audit log (``crm_graph.audit``) with who asked,
when and for which customer.
"""
