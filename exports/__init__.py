"""The formats data leaves in: CSV cells for spreadsheets (csv_format; the routes are api/csv_export.py) and the
Prometheus metrics (prometheus; the route is api/health.py)."""
