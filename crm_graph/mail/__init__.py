"""Mail transports built into the core (the SMTP one), for every plugin that sends mail."""
