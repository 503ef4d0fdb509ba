"""The REST API (/api/v1/): the same services as the web pages, for integrators and scripts."""
