"""The pure accounting core: no I/O, no clock, no environment. Time and ids come in as arguments."""
