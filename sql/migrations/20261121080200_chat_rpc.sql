-- The RPCs the Lambda functions call through PostgREST (POST /rpc/<name>).
--
-- Every RPC returns jsonb and reports a refusal as
--   raise exception using errcode = 'P0001', message = '<code>', detail = '<sentence>'
-- which PostgREST returns as {"code":"P0001","message":"<code>","details":"…"}.
--
-- Internal RPCs (connection registry, send_message, typing_recipients) are
-- executable by service_role only: the Lambda functions verify the caller's
-- token first and pass the verified user id. User-facing RPCs take the caller
-- from auth.uid(), never from a parameter.
--
-- The RPCs are SECURITY DEFINER, so they work on the tables as their owner
-- and do their own checks; the helpers they call run with them. Every function
-- has an empty search_path (every name is schema-qualified), so a caller
-- cannot redirect it to objects of its own. Supabase grants EXECUTE on every
-- new function in public to anon and authenticated, so each function's grants
-- are set explicitly at the end.

-- ===========================================================================
-- Internal helpers: not callable by any API role.
-- ===========================================================================

-- Raises the API error every RPC uses.
create function public.api_error(p_code text, p_detail text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'P0001', message = p_code, detail = p_detail;
end;
$$;

-- Whether a registered connection may still receive events: the token it
-- connected with has not expired. Stale rows whose $disconnect never came are
-- swept separately.
create function public.connection_is_live(p_token_exp timestamptz)
returns boolean
language sql
stable
set search_path = ''
as $$
  select p_token_exp is null or p_token_exp > now()
$$;

-- The Message JSON shape. A deleted message keeps its place (id, seq) but
-- shows no content.
create function public.message_json(p_message public.messages)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_message.id,
    'conversation_id', p_message.conversation_id,
    'seq', p_message.seq,
    'sender_id', p_message.sender_id,
    'client_msg_id', p_message.client_msg_id,
    'kind', p_message.kind,
    'body', case when p_message.deleted_at is null then p_message.body end,
    'attachment', case when p_message.deleted_at is null then p_message.attachment end,
    'reply_to_id', p_message.reply_to_id,
    'created_at', p_message.created_at,
    'edited_at', p_message.edited_at,
    'deleted_at', p_message.deleted_at
  )
$$;

-- The Conversation JSON shape, with its current participants.
create function public.conversation_json(p_conversation_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', c.id,
    'kind', c.kind,
    'name', c.name,
    'context_type', c.context_type,
    'context_id', c.context_id,
    'created_by', c.created_by,
    'created_at', c.created_at,
    'last_seq', c.last_seq,
    'participants', coalesce((
      select jsonb_agg(
        jsonb_build_object('user_id', p.user_id, 'role', p.role, 'joined_at', p.joined_at)
        order by p.joined_at, p.user_id
      )
      from public.participants p
      where p.conversation_id = c.id
        and p.left_at is null
    ), '[]'::jsonb)
  )
  from public.conversations c
  where c.id = p_conversation_id
$$;

-- Live connections of a conversation's current participants, as Recipient
-- JSON, optionally leaving one user out (typing goes to the others only).
create function public.live_recipients(p_conversation_id uuid, p_except_user_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(
    jsonb_agg(
      jsonb_build_object('user_id', c.user_id, 'connection_id', c.connection_id)
      order by c.user_id, c.connection_id
    ),
    '[]'::jsonb
  )
  from public.participants p
  join public.connections c on c.user_id = p.user_id
  where p.conversation_id = p_conversation_id
    and p.left_at is null
    and (p_except_user_id is null or p.user_id <> p_except_user_id)
    and public.connection_is_live(c.token_exp)
$$;

-- Takes the conversation's next sequence number. The row lock this update
-- takes serializes every durable change of one conversation until commit,
-- which is what keeps seq gap-free and in commit order.
create function public.next_conversation_seq(p_conversation_id uuid)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_seq bigint;
begin
  update public.conversations
     set last_seq = last_seq + 1
   where id = p_conversation_id
  returning last_seq into v_seq;

  if v_seq is null then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  return v_seq;
end;
$$;

-- Appends a durable event (other than message.created, which send_message
-- writes together with its message) and returns its seq. For later RPCs
-- (edits, deletes, membership changes) so they all number events the same way.
create function public.append_conversation_event(
  p_conversation_id uuid,
  p_type text,
  p_actor_id uuid,
  p_message_id uuid,
  p_payload jsonb
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_seq bigint := public.next_conversation_seq(p_conversation_id);
begin
  insert into public.conversation_events (conversation_id, seq, type, message_id, actor_id, payload, created_at)
  values (p_conversation_id, v_seq, p_type, p_message_id, p_actor_id, coalesce(p_payload, '{}'::jsonb), clock_timestamp());
  return v_seq;
end;
$$;

-- Validates an attachment for a message kind and returns the stored form
-- ({url, name, mime_type, size_bytes}, nothing else), or null for text.
create function public.validated_attachment(p_kind text, p_attachment jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_url text;
  v_name text;
  v_mime text;
  v_size numeric;
begin
  if p_kind = 'text' then
    if p_attachment is not null and jsonb_typeof(p_attachment) <> 'null' then
      perform public.api_error('invalid_attachment', 'A text message cannot carry an attachment.');
    end if;
    return null;
  end if;

  if p_attachment is null or jsonb_typeof(p_attachment) <> 'object' then
    perform public.api_error('invalid_attachment',
      format('A %s message needs an attachment object {url, name, mime_type, size_bytes}.', p_kind));
  end if;

  if jsonb_typeof(p_attachment -> 'url') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'name') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'mime_type') is distinct from 'string'
     or jsonb_typeof(p_attachment -> 'size_bytes') is distinct from 'number' then
    perform public.api_error('invalid_attachment',
      'The attachment needs url, name and mime_type strings and a size_bytes number.');
  end if;

  v_url := p_attachment ->> 'url';
  v_name := btrim(p_attachment ->> 'name');
  v_mime := lower(btrim(p_attachment ->> 'mime_type'));
  v_size := (p_attachment ->> 'size_bytes')::numeric;

  if char_length(v_url) > 2048 or v_url !~ '^https://[^\s/?#]+[^\s]*$' then
    perform public.api_error('invalid_attachment', 'The attachment url must be an https URL of at most 2048 characters.');
  end if;
  if public.is_blank(v_name) or char_length(v_name) > 255 then
    perform public.api_error('invalid_attachment', 'The attachment name must be 1 to 255 characters.');
  end if;
  if char_length(v_mime) > 255 or v_mime !~ '^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$' then
    perform public.api_error('invalid_attachment', 'The attachment mime_type must look like type/subtype.');
  end if;
  if p_kind = 'image' and v_mime not like 'image/%' then
    perform public.api_error('invalid_attachment', 'An image message needs an image/* mime_type.');
  end if;
  if v_size <= 0 or v_size <> trunc(v_size) or v_size > 9007199254740991 then
    perform public.api_error('invalid_attachment', 'The attachment size_bytes must be a positive whole number.');
  end if;

  return jsonb_build_object('url', v_url, 'name', v_name, 'mime_type', v_mime, 'size_bytes', v_size::bigint);
end;
$$;

-- ===========================================================================
-- Internal RPCs (service_role only)
-- ===========================================================================

-- $connect: records the connection and marks the user seen.
-- first_connection: the user had no other live connection (presence online).
-- The profile row is locked first so a user's connects and disconnects are
-- serialized and exactly one of them sees the first/last connection.
create function public.register_connection(
  p_connection_id text,
  p_user_id uuid,
  p_token_exp timestamptz
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_first boolean;
begin
  if p_connection_id is null or char_length(p_connection_id) not between 1 and 128 then
    perform public.api_error('invalid_argument', 'connection_id must be 1 to 128 characters.');
  end if;

  update public.profiles
     set last_seen_at = now()
   where id = p_user_id;
  if not found then
    perform public.api_error('user_not_found', 'No such user.');
  end if;

  -- $connect may be retried with the same connection id.
  insert into public.connections (connection_id, user_id, token_exp)
  values (p_connection_id, p_user_id, p_token_exp)
  on conflict (connection_id) do update
     set user_id = excluded.user_id,
         token_exp = excluded.token_exp,
         last_seen_at = now();

  v_first := not exists (
    select 1
    from public.connections c
    where c.user_id = p_user_id
      and c.connection_id <> p_connection_id
      and public.connection_is_live(c.token_exp)
  );

  return jsonb_build_object('user_id', p_user_id, 'first_connection', v_first);
end;
$$;

-- $disconnect: forgets the connection and marks the user seen.
-- last_connection: no other live connection remains (presence offline).
-- An unknown id is not an error: $disconnect may run twice.
create function public.unregister_connection(p_connection_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_last boolean;
begin
  select c.user_id into v_user_id
  from public.connections c
  where c.connection_id = p_connection_id;
  if v_user_id is null then
    return jsonb_build_object('user_id', null, 'last_connection', false);
  end if;

  -- Same lock order as register_connection: profile, then connection.
  update public.profiles
     set last_seen_at = now()
   where id = v_user_id;

  delete from public.connections c
   where c.connection_id = p_connection_id
     and c.user_id = v_user_id;
  if not found then
    -- A concurrent $disconnect of the same connection got there first.
    return jsonb_build_object('user_id', null, 'last_connection', false);
  end if;

  v_last := not exists (
    select 1
    from public.connections c
    where c.user_id = v_user_id
      and public.connection_is_live(c.token_exp)
  );

  return jsonb_build_object('user_id', v_user_id, 'last_connection', v_last);
end;
$$;

-- ping: refreshes the connection's and the user's last seen time.
create function public.touch_connection(p_connection_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_now timestamptz := now();
begin
  select c.user_id into v_user_id
  from public.connections c
  where c.connection_id = p_connection_id;
  if v_user_id is null then
    perform public.api_error('unknown_connection', 'No such connection.');
  end if;

  -- Same lock order as register_connection: profile, then connection.
  update public.profiles
     set last_seen_at = v_now
   where id = v_user_id;

  update public.connections c
     set last_seen_at = v_now
   where c.connection_id = p_connection_id;
  if not found then
    perform public.api_error('unknown_connection', 'No such connection.');
  end if;

  return jsonb_build_object('user_id', v_user_id, 'last_seen_at', v_now);
end;
$$;

-- Drops connections the management API reported gone (410) or a sweep found stale.
create function public.remove_connections(p_connection_ids text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_removed int;
begin
  delete from public.connections c
   where c.connection_id = any (coalesce(p_connection_ids, '{}'::text[]));
  get diagnostics v_removed = row_count;
  return jsonb_build_object('removed', v_removed);
end;
$$;

-- Stores a message and its message.created event under the next seq, and
-- returns the stored message with everyone to push it to, in one round trip.
-- Idempotent per (sender, client_msg_id): a repeat returns the stored message
-- with duplicate = true and takes no seq.
create function public.send_message(
  p_sender uuid,
  p_conversation_id uuid,
  p_client_msg_id text,
  p_kind text default 'text',
  p_body text default null,
  p_attachment jsonb default null,
  p_reply_to_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_kind text := coalesce(p_kind, 'text');
  v_body text := p_body;
  v_attachment jsonb;
  v_message public.messages;
  v_duplicate boolean := false;
  v_seq bigint;
  v_now timestamptz;
  v_json jsonb;
  v_constraint text;
begin
  if p_sender is null or p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_sender
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;

  if p_client_msg_id is null or char_length(p_client_msg_id) not between 1 and 100 then
    perform public.api_error('invalid_client_msg_id', 'client_msg_id must be 1 to 100 characters.');
  end if;

  select m.* into v_message
  from public.messages m
  where m.sender_id = p_sender
    and m.client_msg_id = p_client_msg_id;
  v_duplicate := found;

  if not v_duplicate then
    if v_kind not in ('text', 'image', 'file') then
      perform public.api_error('invalid_kind', 'kind must be text, image or file.');
    end if;

    if v_kind = 'text' and public.is_blank(v_body) then
      perform public.api_error('invalid_body', 'A text message needs a non-blank body.');
    end if;
    if char_length(v_body) > 5000 then
      perform public.api_error('invalid_body', 'The body must be at most 5000 characters.');
    end if;
    if public.is_blank(v_body) then
      -- An optional caption that says nothing is no caption.
      v_body := null;
    end if;

    v_attachment := public.validated_attachment(v_kind, p_attachment);

    if p_reply_to_id is not null and not exists (
      select 1
      from public.messages m
      where m.id = p_reply_to_id
        and m.conversation_id = p_conversation_id
    ) then
      perform public.api_error('invalid_reply', 'reply_to_id must be a message of this conversation.');
    end if;

    -- A subtransaction: if a concurrent send with the same client_msg_id
    -- wins the unique key, the seq taken here is rolled back with the insert.
    begin
      v_seq := public.next_conversation_seq(p_conversation_id);
      v_now := clock_timestamp();

      insert into public.messages
        (conversation_id, seq, sender_id, client_msg_id, kind, body, attachment, reply_to_id, created_at)
      values
        (p_conversation_id, v_seq, p_sender, p_client_msg_id, v_kind, v_body, v_attachment, p_reply_to_id, v_now)
      returning * into v_message;

      v_json := public.message_json(v_message);

      insert into public.conversation_events (conversation_id, seq, type, message_id, actor_id, payload, created_at)
      values (p_conversation_id, v_seq, 'message.created', v_message.id, p_sender, v_json, v_now);
    exception
      when unique_violation then
        get stacked diagnostics v_constraint = constraint_name;
        if v_constraint is distinct from 'messages_sender_client_msg_id_key' then
          raise;
        end if;
        select m.* into v_message
        from public.messages m
        where m.sender_id = p_sender
          and m.client_msg_id = p_client_msg_id;
        if not found then
          raise;
        end if;
        v_duplicate := true;
    end;
  end if;

  if v_duplicate then
    if v_message.conversation_id <> p_conversation_id then
      perform public.api_error('idempotency_conflict',
        'This client_msg_id was already used for a message in another conversation.');
    end if;
    v_json := public.message_json(v_message);
  end if;

  return jsonb_build_object(
    'message', v_json,
    'duplicate', v_duplicate,
    'recipients', public.live_recipients(p_conversation_id, null)
  );
end;
$$;

-- Where to send a typing indicator: the other current participants' live connections.
create function public.typing_recipients(p_user_id uuid, p_conversation_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_user_id is null or p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_user_id
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;

  return jsonb_build_object('recipients', public.live_recipients(p_conversation_id, p_user_id));
end;
$$;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is auth.uid())
-- ===========================================================================

-- Finds or creates the 1:1 between the caller and another user, optionally
-- about a context (e.g. 'listing' + id). Concurrency-safe: the unique index on
-- the ordered pair (+ context) lets exactly one creator win; the other finds it.
-- Opening a 1:1 that either side had left brings them back (member.joined).
create function public.open_direct_conversation(
  p_other_user_id uuid,
  p_context_type text default null,
  p_context_id text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me uuid := auth.uid();
  v_low uuid;
  v_high uuid;
  v_id uuid;
  v_created boolean := false;
  v_rejoined public.participants;
begin
  if v_me is null then
    perform public.api_error('invalid_argument', 'A signed-in user is required.');
  end if;
  if p_other_user_id is null then
    perform public.api_error('invalid_argument', 'other_user_id is required.');
  end if;
  if (p_context_type is null) <> (p_context_id is null) then
    perform public.api_error('invalid_argument', 'context_type and context_id must be given together.');
  end if;
  if char_length(p_context_type) not between 1 and 100 or char_length(p_context_id) not between 1 and 100 then
    perform public.api_error('invalid_argument', 'context_type and context_id must be 1 to 100 characters.');
  end if;
  if p_other_user_id = v_me then
    perform public.api_error('invalid_participant', 'You cannot open a direct conversation with yourself.');
  end if;
  if not exists (select 1 from public.profiles where id = p_other_user_id) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  if not exists (select 1 from public.profiles where id = v_me) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;

  v_low := least(v_me, p_other_user_id);
  v_high := greatest(v_me, p_other_user_id);

  insert into public.conversations
    (kind, context_type, context_id, created_by, direct_user_low, direct_user_high, last_seq)
  values
    ('direct', p_context_type, p_context_id, v_me, v_low, v_high, 1)
  on conflict (direct_user_low, direct_user_high, coalesce(context_type, ''), coalesce(context_id, ''))
    where kind = 'direct'
    do nothing
  returning id into v_id;

  if v_id is not null then
    v_created := true;

    insert into public.participants (conversation_id, user_id, role)
    values (v_id, v_me, 'owner'),
           (v_id, p_other_user_id, 'member');

    insert into public.conversation_events (conversation_id, seq, type, actor_id, payload)
    values (v_id, 1, 'conversation.created', v_me, public.conversation_json(v_id));
  else
    -- Someone created it before (possibly a moment ago, concurrently).
    select c.id into strict v_id
    from public.conversations c
    where c.kind = 'direct'
      and c.direct_user_low = v_low
      and c.direct_user_high = v_high
      and coalesce(c.context_type, '') = coalesce(p_context_type, '')
      and coalesce(c.context_id, '') = coalesce(p_context_id, '');

    for v_rejoined in
      update public.participants p
         set left_at = null,
             joined_at = now()
       where p.conversation_id = v_id
         -- Only the caller comes back: one user may not pull another back
         -- into a conversation they left.
         and p.user_id = v_me
         and p.left_at is not null
      returning p.*
    loop
      perform public.append_conversation_event(
        v_id, 'member.joined', v_me, null,
        jsonb_build_object('user_id', v_rejoined.user_id, 'role', v_rejoined.role, 'joined_at', v_rejoined.joined_at)
      );
    end loop;
  end if;

  return jsonb_build_object('conversation', public.conversation_json(v_id), 'created', v_created);
end;
$$;

-- A page of history, always in ascending seq order.
-- With p_after_seq: the oldest messages after it (catching up), has_more
-- meaning newer ones remain. Otherwise: the newest before p_before_seq (or
-- the newest overall), has_more meaning older ones remain.
create function public.list_messages(
  p_conversation_id uuid,
  p_before_seq bigint default null,
  p_after_seq bigint default null,
  p_limit int default 50
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_limit int := least(greatest(coalesce(p_limit, 50), 1), 100);
  v_rows public.messages[];
begin
  if p_conversation_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = auth.uid()
      and p.left_at is null
  ) then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  if p_before_seq is not null and p_after_seq is not null then
    perform public.api_error('invalid_argument', 'Give before_seq or after_seq, not both.');
  end if;

  -- One row more than the page says whether there is more.
  if p_after_seq is not null then
    v_rows := array(
      select m
      from public.messages m
      where m.conversation_id = p_conversation_id
        and m.seq > p_after_seq
      order by m.seq
      limit v_limit + 1
    );
  else
    v_rows := array(
      select m
      from public.messages m
      where m.conversation_id = p_conversation_id
        and (p_before_seq is null or m.seq < p_before_seq)
      order by m.seq desc
      limit v_limit + 1
    );
  end if;

  return jsonb_build_object(
    'messages', (
      select coalesce(jsonb_agg(public.message_json(r) order by r.seq), '[]'::jsonb)
      from unnest(v_rows[1:v_limit]) as r
    ),
    'has_more', coalesce(array_length(v_rows, 1), 0) > v_limit
  );
end;
$$;

-- For GET /v1/health; callable without signing in, reveals only counts.
create function public.health_stats()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'live_connections', (
      select count(*)
      from public.connections c
      where public.connection_is_live(c.token_exp)
    ),
    'users_online', (
      select count(distinct c.user_id)
      from public.connections c
      where public.connection_is_live(c.token_exp)
    ),
    'active_conversations', (
      select count(distinct e.conversation_id)
      from public.conversation_events e
      where e.created_at > now() - interval '24 hours'
    )
  )
$$;

-- ===========================================================================
-- Who may execute what
-- ===========================================================================

-- Helpers: only the functions above (running as their owner) call them.
revoke execute on function
  public.api_error(text, text),
  public.connection_is_live(timestamptz),
  public.message_json(public.messages),
  public.conversation_json(uuid),
  public.live_recipients(uuid, uuid),
  public.next_conversation_seq(uuid),
  public.append_conversation_event(uuid, text, uuid, uuid, jsonb),
  public.validated_attachment(text, jsonb)
from public, anon, authenticated, service_role;

-- Internal RPCs: service_role only.
revoke execute on function
  public.register_connection(text, uuid, timestamptz),
  public.unregister_connection(text),
  public.touch_connection(text),
  public.remove_connections(text[]),
  public.send_message(uuid, uuid, text, text, text, jsonb, uuid),
  public.typing_recipients(uuid, uuid)
from public, anon, authenticated;

grant execute on function
  public.register_connection(text, uuid, timestamptz),
  public.unregister_connection(text),
  public.touch_connection(text),
  public.remove_connections(text[]),
  public.send_message(uuid, uuid, text, text, text, jsonb, uuid),
  public.typing_recipients(uuid, uuid)
to service_role;

-- User-facing RPCs: signed-in users (and service_role), never anon.
revoke execute on function
  public.open_direct_conversation(uuid, text, text),
  public.list_messages(uuid, bigint, bigint, int)
from public, anon;

grant execute on function
  public.open_direct_conversation(uuid, text, text),
  public.list_messages(uuid, bigint, bigint, int)
to authenticated, service_role;

-- Health: everyone, including anon.
revoke execute on function public.health_stats() from public;
grant execute on function public.health_stats() to anon, authenticated, service_role;
