"""`python app.py <command>`: create-admin (create_admin), grafana-role and oee-summary (grafana)."""
