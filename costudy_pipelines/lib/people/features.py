"""Identity features: what each source's rows say about who a user is, read in one query.

Every source declares the identity features its rows carry (`IdentitySource`: a table, the
path of each feature in the row's raw JSON, and how far it is trusted); a sheet or an Elective
export maps its own columns in sources.toml. The features query (`features_query`) reads, for
every user, the users table's email, name and username and, per feature, the most trusted
value any source gives: one row per user, the CSV header of `FEATURES_HEADER`.

The features:
    name                a full name ("Ann Lee", "Lee, Ann"); users.name wins when set
    first_name, last_name   given and family name, when a source keeps them apart
    phone, username     strong identifiers: two people rarely share one
    birth_date          strong: any common spelling (1990-01-31, 19900131, 31/01/1990)
    city, postcode      where the person lives (compared together, as one locality)
    address             the street address line

Plain Python: the registry (sources/registry.py) builds the declarations from each feed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from psycopg import sql

IDENTITY_FEATURES = (
    "name",
    "first_name",
    "last_name",
    "phone",
    "username",
    "birth_date",
    "city",
    "postcode",
    "address",
)
FEATURES_HEADER = ("id", "email", *IDENTITY_FEATURES)
# Features the users table holds itself (the load engine's name priority picks users.name).
USERS_COLUMNS = {"name": "name", "username": "username"}


@dataclass(frozen=True)
class IdentitySource:
    """Where one table's rows hold identity features.

    fields: feature -> path of keys into the row's raw JSON, e.g. {"phone": ("customer_phone",)}
    or, for an Elective column outside the known layouts, ("_extra", "Date of Birth").
    scope: column -> value, the rows of this source within a shared table (a worksheet's rows
    of sheet_rows). trust: the lower wins when two sources give one user different values
    (the source's name-priority rank).
    """

    table: str
    fields: Mapping[str, tuple[str, ...]]
    trust: int = 9
    scope: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(IDENTITY_FEATURES))
        if unknown:
            raise ValueError(
                f"{self.table}: unknown identity feature(s) {unknown}; known: "
                f"{list(IDENTITY_FEATURES)}"
            )
        empty = sorted(name for name, path in self.fields.items() if not path)
        if empty:
            raise ValueError(f"{self.table}: identity feature(s) {empty} name no field")


def _declared(source: IdentitySource, feature: str, path: tuple[str, ...]) -> sql.Composed:
    scope = sql.SQL("").join(
        sql.SQL(" and {} = {}").format(sql.Identifier(column), sql.Literal(value))
        for column, value in sorted(source.scope.items())
    )
    return sql.SQL(
        "select user_id, {feature} as feature, btrim(raw #>> {path}) as value, {trust} as trust "
        "from {table} where deleted_at is null{scope}"
    ).format(
        feature=sql.Literal(feature),
        path=sql.Literal(list(path)),
        trust=sql.Literal(source.trust),
        table=sql.Identifier(source.table),
        scope=scope,
    )


def features_query(sources: Sequence[IdentitySource]) -> sql.Composed:
    """One row per user: FEATURES_HEADER. A feature no source declares is null."""
    declared: list[sql.Composable] = [
        _declared(source, feature, path)
        for source in sources
        for feature, path in sorted(source.fields.items())
    ]
    if not declared:
        declared = [sql.SQL("select null::uuid, null::text, null::text, 0 where false")]
    columns = []
    for feature in IDENTITY_FEATURES:
        best = sql.SQL("max(b.value) filter (where b.feature = {})").format(sql.Literal(feature))
        if feature in USERS_COLUMNS:
            own = sql.SQL("nullif(btrim(u.{}), '')").format(sql.Identifier(USERS_COLUMNS[feature]))
            best = sql.SQL("coalesce({}, {})").format(own, best)
        columns.append(sql.SQL("{} as {}").format(best, sql.Identifier(feature)))
    return sql.SQL(
        "with declared (user_id, feature, value, trust) as ({union}), "
        "best as (select distinct on (user_id, feature) user_id, feature, value from declared "
        "where value <> '' order by user_id, feature, trust, value) "
        "select u.id, u.email, {columns} from users u "
        "left join best b on b.user_id = u.id group by u.id, u.email"
    ).format(union=sql.SQL(" union all ").join(declared), columns=sql.SQL(", ").join(columns))
