"""People: users joined, transitively, by accepted links (the `people` view,
sql/views/people.sql), and what the asset and its checks report about them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from costudy_pipelines.lib.quality import SAMPLES, Finding

SUMMARY = """
with persons as (
    select person_id, count(*) as users, array_agg(email order by email) as emails
    from people
    group by person_id
)
select
    count(*) as persons,
    coalesce(sum(users) filter (where users > 1), 0)::bigint as users_in_multi_user_persons,
    count(*) filter (where users > 1) as multi_user_persons,
    coalesce(max(users), 0) as largest_person_users,
    (select emails from persons order by users desc, person_id limit 1) as largest_person_emails
from persons
"""

# A user listed under two persons (or twice): the grouping is broken.
USERS_IN_TWO_PERSONS = """
select count(*) over (), user_id from people group by user_id having count(*) > 1 limit %(limit)s
"""

# Both users of an accepted link must belong to one person.
SPLIT_LINKS = """
select count(*) over (), l.user_a::text || ' ~ ' || l.user_b::text
from user_links l
join people pa on pa.user_id = l.user_a
join people pb on pb.user_id = l.user_b
where l.decision = 'accepted' and pa.person_id <> pb.person_id
limit %(limit)s
"""

# Revenue per person adds revenue per user up: per currency, the same items and net.
REVENUE_DIFFERENCES = """
with by_person as (
    select currency, sum(items) as items, sum(net) as net from revenue_by_person group by currency
),
by_user as (
    select currency, sum(items) as items, sum(net) as net from revenue_by_user group by currency
)
select count(*) over (),
       format('%%s: per person %%s items, %%s net; per user %%s items, %%s net', currency,
              p.items, p.net, u.items, u.net)
from by_person p full join by_user u using (currency)
where (p.items, p.net) is distinct from (u.items, u.net)
limit %(limit)s
"""

# A person holding two strong features (dates of birth, phones) or too many users.
IMPLAUSIBLE = """
with persons as (
    select p.person_id, count(*) as users,
           count(distinct i.birth_date) as birth_dates, count(distinct i.phone) as phones,
           array_agg(p.email order by p.email) as emails
    from people p left join user_identity i on i.user_id = p.user_id
    group by p.person_id
)
select count(*) over (),
       format('%%s users (%%s dates of birth, %%s phones): %%s', users, birth_dates, phones,
              array_to_string(emails[1:5], ', '))
from persons
where users > %(max_group_size)s or birth_dates > 1 or phones > 1
order by users desc, person_id
limit %(limit)s
"""

PERSON_OF = "select person_id from people where user_id = %(user)s"
MEMBERS = "select user_id from people where person_id = %(person)s order by user_id"


def summary(conn: psycopg.Connection) -> dict[str, Any]:
    """persons, users_in_multi_user_persons, multi_user_persons, largest_person_users and
    largest_person_emails."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(SUMMARY).fetchone()
    assert row is not None
    return dict(row)


def person_of(conn: psycopg.Connection, user: UUID) -> UUID | None:
    row = conn.execute(PERSON_OF, {"user": user}).fetchone()
    return row[0] if row else None


def members(conn: psycopg.Connection, person: UUID) -> list[UUID]:
    return [row[0] for row in conn.execute(MEMBERS, {"person": person}).fetchall()]


def _finding(conn: psycopg.Connection, query: str, **params: Any) -> Finding:
    rows = conn.execute(query, {"limit": SAMPLES, **params}).fetchall()
    return Finding(int(rows[0][0]) if rows else 0, [str(row[1]) for row in rows])


def users_in_two_persons(conn: psycopg.Connection) -> Finding:
    return _finding(conn, USERS_IN_TWO_PERSONS)


def split_links(conn: psycopg.Connection) -> Finding:
    return _finding(conn, SPLIT_LINKS)


def implausible_persons(conn: psycopg.Connection, *, max_group_size: int) -> Finding:
    """Persons holding two dates of birth or phones, or more than max_group_size users."""
    return _finding(conn, IMPLAUSIBLE, max_group_size=max_group_size)


def revenue_differences(conn: psycopg.Connection) -> Finding:
    """Currencies whose revenue per person does not add up to revenue per user."""
    return _finding(conn, REVENUE_DIFFERENCES)
