"""The security audit log (models, service, schema) and where it is written (recording)."""
