"""Evidence reports: HTML (Jinja2), archival PDF (WeasyPrint), CSV/JSON, manifest and verify."""
