"""Google Sheets: one full-sync asset per configured worksheet."""
