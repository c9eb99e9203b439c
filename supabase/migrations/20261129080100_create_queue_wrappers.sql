-- Our only way into pgmq. Every call goes through these wrappers so a pgmq upgrade
-- (signatures changed between 1.4, 1.5 and 1.10) is absorbed here and nowhere else.
-- Only functions present in pgmq 1.4.4 are used: create, send, read, archive, delete,
-- set_vt, metrics.

-- pgmq's own functions are executable by public; nobody but these wrappers may call them.
revoke execute on all functions in schema pgmq from public;

create function private.queue_create(queue_name text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not exists (select from pgmq.meta as m where m.queue_name = queue_create.queue_name) then
        perform pgmq.create(queue_name);
    end if;
end
$$;
comment on function private.queue_create(text) is 'Create a pgmq queue unless it exists.';

create function private.queue_send(queue_name text, message jsonb, delay_seconds integer default 0)
returns bigint
language sql
security definer
set search_path = ''
as $$
    select pgmq.send(queue_name, message, delay_seconds)
$$;
comment on function private.queue_send(text, jsonb, integer) is 'Send one message; returns its msg_id.';

create function private.queue_read(queue_name text, visibility_seconds integer, quantity integer)
returns table (msg_id bigint, read_ct integer, enqueued_at timestamptz, message jsonb)
language sql
security definer
set search_path = ''
as $$
    select r.msg_id, r.read_ct, r.enqueued_at, r.message
    from pgmq.read(queue_name, visibility_seconds, quantity) as r
$$;
comment on function private.queue_read(text, integer, integer) is
'Read up to quantity messages and hide them for visibility_seconds.';

create function private.queue_archive(queue_name text, msg_id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
    select pgmq.archive(queue_name, msg_id)
$$;
comment on function private.queue_archive(text, bigint) is 'Move a message to the queue archive.';

create function private.queue_delete(queue_name text, msg_id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
    select pgmq.delete(queue_name, msg_id)
$$;
comment on function private.queue_delete(text, bigint) is 'Delete a message for good.';

create function private.queue_set_visibility(queue_name text, msg_id bigint, seconds_from_now integer)
returns void
language sql
security definer
set search_path = ''
as $$
    select from pgmq.set_vt(queue_name, msg_id, seconds_from_now)
$$;
comment on function private.queue_set_visibility(text, bigint, integer) is
'Make a message visible again seconds_from_now seconds from now.';

create function private.queue_metrics(queue_name text)
returns table (queue_length bigint, oldest_msg_age_sec integer, total_messages bigint)
language sql
security definer
set search_path = ''
as $$
    select m.queue_length, m.oldest_msg_age_sec, m.total_messages
    from pgmq.metrics(queue_name) as m
$$;
comment on function private.queue_metrics(text) is 'Depth, oldest message age and total sent of a queue.';

select private.queue_create('mx_ingest');
select private.queue_create('mx_ingest_dlq');
