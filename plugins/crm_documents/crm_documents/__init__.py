"""Office documents for crm-graph: Word and Excel templates filled from the CRM's records, as
DOCX, XLSX and PDF (through LibreOffice). Loaded through the entry point ``crm_documents``."""
