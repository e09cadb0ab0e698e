"""The course platform core database (PostgreSQL): orders and enrollments, by day."""
