"""Stored files: uploads kept for import jobs, the reports and exports jobs write, and the signed links that download them."""
