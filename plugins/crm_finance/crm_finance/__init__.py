"""Finance sync for crm-graph: orders to accounting, payments back, reconciled. Loaded through the entry point ``crm_finance``."""
