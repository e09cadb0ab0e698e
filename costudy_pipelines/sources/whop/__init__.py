"""Whop: payments, memberships and users, read by day through the v1 cursor API."""
