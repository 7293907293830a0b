"""Bulk import of customers, organizations, products and historic orders from CSV and XLSX, as jobs."""
