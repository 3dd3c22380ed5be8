"""HTTP only: parse and validate input, call one service, shape the response."""
