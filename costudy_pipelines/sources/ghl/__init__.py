"""GoHighLevel (LeadConnector API v2): contacts of every configured location, by day."""
