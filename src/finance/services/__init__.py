"""Use cases. They see storage only through the ports in `finance.services.ports`."""
