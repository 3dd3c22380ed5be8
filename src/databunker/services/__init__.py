"""The domain: framework-free services that take a unit of work and plain data."""
