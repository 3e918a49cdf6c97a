"""The notifier: matches newly stored videos against the saved searches and delivers them to webhooks."""
