"""The `finance` command."""
