"""The API's routers, one per resource: jobs, engines, service (health), page (web page, docs)."""
