"""Exports for analysis tools: customers, orders, opportunities and tickets as CSV, XLSX or Parquet."""
