"""Customer service for crm-graph: mail channels (IMAP in, SMTP out) and helpdesk sync."""
