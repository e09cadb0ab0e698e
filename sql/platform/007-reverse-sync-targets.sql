-- Targets of the reverse sync from the marketing website (SPEC §4): demo request -> lead,
-- vote -> engagement, e-mail subscription -> mailing list, contact form -> support ticket.
--
-- (source_system, source_id) names the website row a target row came from (e.g. 'website',
-- '42'); both are NULL for rows created in the platform itself. On leads, engagements and
-- support_tickets the pair is unique, so the sync upserts ON CONFLICT (source_system,
-- source_id). The mailing list is one row per address: it is keyed by email instead.

create table leads (
    id uuid primary key default gen_random_uuid(),
    source_system text,
    source_id text,
    email email_address not null,
    name text,
    company text,
    phone text,
    message text,
    status text not null default 'new'
        constraint leads_status check (status in ('new', 'contacted', 'qualified', 'converted', 'lost')),
    user_id uuid
        constraint leads_user_fkey references users (id) on delete set null,
    requested_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint leads_source_pair check ((source_system is null) = (source_id is null)),
    constraint leads_source_key unique (source_system, source_id)
);

comment on table leads is 'Sales leads; from the website''s demo requests.';
comment on column leads.requested_at is 'When the demo was requested (the source row''s time).';
comment on column leads.user_id is 'The platform user with this e-mail, when there is one.';

create index leads_email on leads (email);
create index leads_user on leads (user_id);

create trigger leads_updated_at before update on leads
    for each row execute function set_updated_at();

create table engagements (
    id uuid primary key default gen_random_uuid(),
    source_system text,
    source_id text,
    kind text not null
        constraint engagements_kind_slug check (kind ~ '^[a-z][a-z0-9_]*$'),
    subject text not null
        constraint engagements_subject_not_blank check (btrim(subject) <> ''),
    value integer,
    email email_address,
    user_id uuid
        constraint engagements_user_fkey references users (id) on delete set null,
    details jsonb not null default '{}'
        constraint engagements_details_object check (jsonb_typeof(details) = 'object'),
    occurred_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint engagements_source_pair check ((source_system is null) = (source_id is null)),
    constraint engagements_source_key unique (source_system, source_id)
);

comment on table engagements is
    'Things people did on the website, e.g. kind ''feature_vote'' with subject = the feature '
    'voted for and value = the vote (+1 / -1); details keeps the rest of the source row.';

create index engagements_subject on engagements (kind, subject);
create index engagements_email on engagements (email);
create index engagements_user on engagements (user_id);

create trigger engagements_updated_at before update on engagements
    for each row execute function set_updated_at();

create table mailing_list (
    id uuid primary key default gen_random_uuid(),
    email email_address not null
        constraint mailing_list_email_key unique,
    name text,
    status text not null default 'subscribed'
        constraint mailing_list_status check (status in ('subscribed', 'unsubscribed')),
    subscribed_at timestamptz not null,
    unsubscribed_at timestamptz,
    user_id uuid
        constraint mailing_list_user_fkey references users (id) on delete set null,
    -- the source row that last set this entry (not unique: one address, many sign-ups)
    source_system text,
    source_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint mailing_list_unsubscribed_at_when_unsubscribed
        check ((status = 'unsubscribed') = (unsubscribed_at is not null)),
    constraint mailing_list_source_pair check ((source_system is null) = (source_id is null))
);

comment on table mailing_list is
    'One row per address: subscribing twice is one entry, so the sync upserts ON CONFLICT '
    '(email); source_system/source_id say which source row last set it.';

create index mailing_list_source on mailing_list (source_system, source_id);
create index mailing_list_user on mailing_list (user_id);

create trigger mailing_list_updated_at before update on mailing_list
    for each row execute function set_updated_at();

create table support_tickets (
    id uuid primary key default gen_random_uuid(),
    source_system text,
    source_id text,
    email email_address not null,
    name text,
    subject text,
    message text not null
        constraint support_tickets_message_not_blank check (btrim(message) <> ''),
    status text not null default 'open'
        constraint support_tickets_status check (status in ('open', 'pending', 'resolved', 'closed')),
    priority text not null default 'normal'
        constraint support_tickets_priority check (priority in ('low', 'normal', 'high', 'urgent')),
    user_id uuid
        constraint support_tickets_user_fkey references users (id) on delete set null,
    submitted_at timestamptz not null,
    resolved_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint support_tickets_resolved_at_when_done
        check (resolved_at is null or status in ('resolved', 'closed')),
    constraint support_tickets_source_pair check ((source_system is null) = (source_id is null)),
    constraint support_tickets_source_key unique (source_system, source_id)
);

comment on table support_tickets is 'Support tickets; from the website''s contact forms.';

create index support_tickets_open on support_tickets (submitted_at) where status in ('open', 'pending');
create index support_tickets_email on support_tickets (email);
create index support_tickets_user on support_tickets (user_id);

create trigger support_tickets_updated_at before update on support_tickets
    for each row execute function set_updated_at();
