-- JWT sessions, and the provider API keys users hand the platform (encrypted by the application).

create table user_sessions (
    jti text primary key
        constraint user_sessions_jti_length check (length(jti) between 8 and 255),
    user_id uuid not null
        constraint user_sessions_user_fkey references users (id) on delete cascade,
    issued_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz,
    revoked_reason text,
    last_seen_at timestamptz,
    user_agent text,
    ip_address inet,
    constraint user_sessions_expires_after_issue check (expires_at > issued_at),
    constraint user_sessions_revoked_after_issue check (revoked_at >= issued_at),
    constraint user_sessions_reason_only_when_revoked
        check (revoked_reason is null or revoked_at is not null)
);

comment on table user_sessions is
    'One row per issued JWT (its jti claim): a token is valid while revoked_at is NULL and '
    'expires_at is in the future, so a session can be revoked before its JWT expires.';

create index user_sessions_user_unrevoked on user_sessions (user_id, expires_at)
    where revoked_at is null;

create table user_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null
        constraint user_tokens_user_fkey references users (id) on delete cascade,
    provider text not null
        constraint user_tokens_provider check (provider in ('github', 'openai', 'anthropic', 'gemini')),
    -- AES-256-GCM output (ciphertext followed by the 16-byte tag) and its 96-bit nonce
    ciphertext bytea not null
        constraint user_tokens_ciphertext_has_tag check (octet_length(ciphertext) > 16),
    nonce bytea not null
        constraint user_tokens_nonce_length check (octet_length(nonce) = 12),
    key_id text not null
        constraint user_tokens_key_id_shape check (key_id ~ '^[a-z0-9-]{1,64}$'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_used_at timestamptz,
    constraint user_tokens_one_per_provider unique (user_id, provider)
);

comment on table user_tokens is
    'Provider API keys, encrypted with AES-256-GCM by the application '
    '(costudy_pipelines.lib.token_crypto) under the key in the PLATFORM_TOKEN_KEY environment '
    'variable: neither the key nor a plaintext ever reaches the database. The user id and '
    'provider are bound into each ciphertext as associated data, so a ciphertext copied to '
    'another row does not decrypt.';
comment on column user_tokens.key_id is
    'Fingerprint of the key that encrypted the row, so a key rotation knows what to re-encrypt.';

create trigger user_tokens_updated_at before update on user_tokens
    for each row execute function set_updated_at();
