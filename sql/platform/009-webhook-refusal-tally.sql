-- Unauthenticated refusals of the webhook receiver, counted rather than kept one row each:
-- anyone can send a request without the secret, so what such requests leave behind must not
-- grow with their number. The receiver tallies them in memory (per reason: a count, the first
-- and last time, a few samples) and adds the tally here every few seconds, one row per reason
-- and hour. Deliveries that pass the signature check keep their row in the inbox (008).
create table reverse_sync_webhook_refusals (
    window_start timestamptz not null
        constraint reverse_sync_webhook_refusals_hourly check (window_start = date_trunc('hour', window_start)),
    reason text not null
        constraint reverse_sync_webhook_refusals_reason_slug check (reason ~ '^[a-z][a-z_]*$'),
    refusals bigint not null
        constraint reverse_sync_webhook_refusals_positive check (refusals > 0),
    first_at timestamptz not null,
    last_at timestamptz not null,
    samples jsonb not null default '[]'
        constraint reverse_sync_webhook_refusals_samples_array check (jsonb_typeof(samples) = 'array'),
    constraint reverse_sync_webhook_refusals_pkey primary key (window_start, reason)
);

comment on table reverse_sync_webhook_refusals is
    'Requests to the webhook receiver refused before their signature was verified (unsigned, '
    'bad signature, too large), per hour and reason: how many, first and last seen, and a few '
    'samples (delivery id, timestamp header, client address, when), never the body.';
