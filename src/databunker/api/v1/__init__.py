"""Databunker's v1 wire: routes and JSON answers over the domain services."""
