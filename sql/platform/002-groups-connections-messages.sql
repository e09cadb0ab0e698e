-- The social side of the platform: groups and their members, user-to-user connections, and
-- messages to a user or to a group.

create table groups (
    id uuid primary key default gen_random_uuid(),
    name text not null
        constraint groups_name_not_blank check (btrim(name) <> ''),
    description text,
    -- a group outlives its creator: ownership passes on through group_members roles
    owner_id uuid
        constraint groups_owner_fkey references users (id) on delete set null,
    is_private boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index groups_owner on groups (owner_id);

create trigger groups_updated_at before update on groups
    for each row execute function set_updated_at();

create table group_members (
    group_id uuid not null
        constraint group_members_group_fkey references groups (id) on delete cascade,
    user_id uuid not null
        constraint group_members_user_fkey references users (id) on delete cascade,
    role text not null default 'member'
        constraint group_members_role check (role in ('owner', 'admin', 'member')),
    joined_at timestamptz not null default now(),
    primary key (group_id, user_id)
);

create index group_members_user on group_members (user_id);

create table connections (
    id uuid primary key default gen_random_uuid(),
    requester_id uuid not null
        constraint connections_requester_fkey references users (id) on delete cascade,
    addressee_id uuid not null
        constraint connections_addressee_fkey references users (id) on delete cascade,
    status text not null default 'pending'
        constraint connections_status check (status in ('pending', 'accepted', 'declined', 'blocked')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    responded_at timestamptz,
    constraint connections_not_self check (requester_id <> addressee_id),
    constraint connections_responded_when_answered
        check ((status = 'pending') = (responded_at is null))
);

comment on table connections is
    'User-to-user connections: one row per pair of users, whoever asked first.';

-- A asks B and B asks A is the same connection: one row per unordered pair.
create unique index connections_one_per_pair
    on connections (least(requester_id, addressee_id), greatest(requester_id, addressee_id));
create index connections_requester on connections (requester_id);
create index connections_addressee on connections (addressee_id);

create trigger connections_updated_at before update on connections
    for each row execute function set_updated_at();

create table messages (
    id bigint generated always as identity primary key,
    sender_id uuid not null
        constraint messages_sender_fkey references users (id) on delete cascade,
    recipient_id uuid
        constraint messages_recipient_fkey references users (id) on delete cascade,
    group_id uuid
        constraint messages_group_fkey references groups (id) on delete cascade,
    body text not null
        constraint messages_body_not_empty check (length(body) > 0),
    created_at timestamptz not null default now(),
    edited_at timestamptz,
    read_at timestamptz,
    constraint messages_one_destination check (num_nonnulls(recipient_id, group_id) = 1),
    constraint messages_not_to_self check (recipient_id <> sender_id)
);

comment on table messages is 'A message goes to exactly one user or exactly one group.';

create index messages_recipient on messages (recipient_id, created_at desc)
    where recipient_id is not null;
create index messages_group on messages (group_id, created_at desc) where group_id is not null;
create index messages_sender on messages (sender_id, created_at desc);
