"""What the services share: settings, event and catalogue contracts, clients, logging, time, scaffolding."""
