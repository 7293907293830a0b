"""Email marketing for crm-graph (entry point ``crm_marketing``)."""
