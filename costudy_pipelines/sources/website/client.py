"""The website database's event tables, each read by day of creation.

Tables: id, email, name, created_at, plus whatever else the website stores, which rides along
in the raw row.
"""

from costudy_pipelines.lib.clients.databases import TableExtract

# event kind (the warehouse's scope of website_people) -> its table
EVENT_TABLES: dict[str, TableExtract] = {
    "vote": TableExtract("website_votes", "votes"),
    "demo_request": TableExtract("website_demo_requests", "demo_requests"),
    "email_subscription": TableExtract("website_email_subscriptions", "email_subscriptions"),
    "contact_submission": TableExtract("website_contact_submissions", "contact_submissions"),
}
