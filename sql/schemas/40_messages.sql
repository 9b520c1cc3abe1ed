-- Messages: sending (idempotent per client_msg_id), typing, history, edits
-- and deletes. Participants read them through RLS; every write goes through
-- an RPC that also writes the conversation's event (50_events.sql).

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  seq bigint not null,
  -- Null for system messages, and after the author's account is deleted.
  sender_id uuid references public.profiles (id) on delete set null,
  client_msg_id text,
  -- text, image, file or system. This column, seq, client_msg_id, body and
  -- attachment are checked by messages_fields_check, below.
  kind text not null default 'text',
  body text,
  attachment jsonb,
  reply_to_id uuid references public.messages (id) on delete set null,
  created_at timestamptz not null default now(),
  edited_at timestamptz,
  deleted_at timestamptz,
  -- What search_messages (80_search.sql) matches: both stemmings at once.
  search tsvector generated always as (
    to_tsvector('english'::regconfig, coalesce(body, ''))
    || to_tsvector('spanish'::regconfig, coalesce(body, ''))
  ) stored,
  constraint messages_conversation_seq_key unique (conversation_id, seq),
  -- Idempotency key of a send: a retry finds the stored message.
  constraint messages_sender_client_msg_id_key unique (sender_id, client_msg_id)
);

-- What a message's own fields must hold, checked by a trigger rather than by
-- CHECK constraints, as for conversations (30_conversations.sql): Postgres
-- reads every CHECK of a table again, and plans it, for each statement that
-- writes one of its rows, and every message sent is such a statement. These
-- six were about 4% of the server's instructions for a message to a group
-- (bench/sql/send_message_callgrind.sh). The refusal is the one a CHECK
-- gives: check_violation, naming the constraint that was broken.
create function public.check_message_fields()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_broken text;
begin
  -- As for a CHECK, an unknown (null) outcome passes.
  v_broken := case
    when not coalesce(new.seq > 0, true)
      then 'messages_seq_positive'
    when not coalesce(char_length(new.client_msg_id) between 1 and 100, true)
      then 'messages_client_msg_id_length'
    when not coalesce(new.kind in ('text', 'image', 'file', 'system'), true)
      then 'messages_kind_check'
    when not coalesce(char_length(new.body) <= 5000, true)
      then 'messages_body_length'
    when not coalesce(new.attachment is null or jsonb_typeof(new.attachment) = 'object', true)
      then 'messages_attachment_object'
    -- A live text message says something; a deleted one may have its body wiped.
    when not coalesce(new.kind <> 'text' or new.deleted_at is not null or not public.is_blank(new.body), true)
      then 'messages_text_body_not_blank'
  end;
  if v_broken is not null then
    perform public.raise_check_violation('messages', v_broken);
  end if;
  return new;
end;
$$;
revoke execute on function public.check_message_fields() from public, anon, authenticated, service_role;

-- Not fired by what a deleted account or a deleted reply sets to null
-- (sender_id, reply_to_id), nor by edited_at alone.
create trigger messages_fields_check
  before insert or update of seq, client_msg_id, kind, body, attachment, deleted_at
  on public.messages
  for each row execute function public.check_message_fields();

comment on column public.messages.client_msg_id is
  'Idempotency key chosen by the sending client; unique per sender.';

create index messages_reply_to_id_idx on public.messages (reply_to_id) where reply_to_id is not null;

alter table public.messages enable row level security;
revoke all on table public.messages from anon, authenticated;
grant select on table public.messages to authenticated;
grant all on table public.messages to service_role;

create policy "messages are readable by participants"
  on public.messages
  for select
  to authenticated
  using (public.is_participant(conversation_id));

-- ===========================================================================
-- Helpers
-- ===========================================================================

-- The Message JSON shape. A deleted message keeps its place (id, seq) but
-- shows no content.
-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
create function public.message_json(p_message public.messages)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return jsonb_build_object(
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
  );
end;
$$;
revoke execute on function public.message_json(public.messages) from public, anon, authenticated, service_role;

-- The body of a message of a kind, as stored: a text needs one that is not
-- blank; for an image or file it is an optional caption, and a blank caption
-- is no caption. No control characters but newline and tab (a terminal or a
-- log would obey them), no bidi embeddings, overrides or isolates
-- (has_bidi_control: they make text show other than it reads; the marks are
-- allowed). At most 5000 characters (code points), or message_too_long.
create function public.validated_body(p_kind text, p_body text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  -- Asked once: is_blank is a SQL function, parsed and planned again in each
  -- transaction that calls it.
  v_blank boolean := public.is_blank(p_body);
begin
  if p_kind = 'text' and v_blank then
    perform public.api_error('invalid_body', 'A text message needs a non-blank body.');
  end if;
  if public.has_control(translate(p_body, E'\n\t', '')) or public.has_bidi_control(p_body) then
    perform public.api_error('invalid_body',
      'The body must not contain control characters other than newline and tab, nor bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069).');
  end if;
  if char_length(p_body) > 5000 then
    perform public.api_error('message_too_long', 'The body must be at most 5000 characters.');
  end if;
  if v_blank then
    return null;
  end if;
  return p_body;
end;
$$;
revoke execute on function public.validated_body(text, text) from public, anon, authenticated, service_role;

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
  v_name := public.trim_blank(p_attachment ->> 'name');
  v_mime := public.trim_blank(p_attachment ->> 'mime_type');
  v_size := (p_attachment ->> 'size_bytes')::numeric;

  -- The URL is stored and shown as given: https, a host, no spaces or
  -- control characters anywhere.
  if octet_length(v_url) > 2048
     or v_url !~ '^https://[^/?#\u0001-\u0020\u007f-\u009f]+[^\u0001-\u0020\u007f-\u009f]*$' then
    perform public.api_error('invalid_attachment', 'The attachment url must be an https URL of at most 2048 bytes.');
  end if;
  if v_name = '' or char_length(v_name) > 255 or v_name ~ '[/\\]' or public.has_control(v_name) then
    perform public.api_error('invalid_attachment',
      'The attachment name must be a file name of 1 to 255 characters without /, \ or control characters.');
  end if;
  -- RFC 6838 restricted names: type and subtype each a letter or digit and up
  -- to 126 more, so at most 255 in all. Checked before lower-casing: lower()
  -- follows the locale and could turn a non-ASCII letter into an ASCII one.
  if v_mime !~ '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$' then
    perform public.api_error('invalid_attachment', 'The attachment mime_type must be type/subtype, each 1 to 127 characters.');
  end if;
  v_mime := lower(v_mime);
  if p_kind = 'image' and v_mime not like 'image/%' then
    perform public.api_error('invalid_attachment', 'An image message needs an image/* mime_type.');
  end if;
  -- Files are stored elsewhere (e.g. Supabase Storage); this caps the metadata.
  if v_size <= 0 or v_size <> trunc(v_size) or v_size > 104857600 then
    perform public.api_error('invalid_attachment', 'The attachment size_bytes must be a whole number from 1 to 104857600.');
  end if;

  return jsonb_build_object('url', v_url, 'name', v_name, 'mime_type', v_mime, 'size_bytes', v_size::bigint);
end;
$$;
revoke execute on function public.validated_attachment(text, jsonb) from public, anon, authenticated, service_role;

-- Finds a message the caller may act on, locked for the change: the
-- conversation row first (through lock_as_participant, the order of every
-- durable change), then the message. A message that does not exist and one
-- in a conversation the caller is not in are the same message_not_found.
create function public.lock_message_for_change(p_user_id uuid, p_message_id uuid)
returns public.messages
language plpgsql
set search_path = ''
as $$
declare
  v_conversation_id uuid;
  v_message public.messages;
begin
  select m.conversation_id into v_conversation_id
  from public.messages m
  where m.id = p_message_id;

  if v_conversation_id is null or p_user_id is null or not exists (
    select 1
    from public.participants p
    where p.conversation_id = v_conversation_id
      and p.user_id = p_user_id
      and p.left_at is null
  ) then
    perform public.api_error('message_not_found', 'No such message.');
  end if;

  perform public.lock_as_participant(v_conversation_id, p_user_id);

  select m.* into v_message
  from public.messages m
  where m.id = p_message_id
  for update;

  if v_message.kind = 'system' or v_message.sender_id is distinct from p_user_id then
    perform public.api_error('not_author', 'Only the author can change a message.');
  end if;
  return v_message;
end;
$$;
revoke execute on function public.lock_message_for_change(uuid, uuid) from public, anon, authenticated, service_role;

-- Refuses (blocked) a new message or an edit in a direct conversation whose
-- two users have a block between them, either way (15_blocks.sql); the
-- refusal does not say who blocked whom. Asked with the conversation's row
-- locked: block_user takes that lock before it inserts the block, so a write
-- either commits before the block exists or sees it.
create function public.refuse_if_blocked(p_conversation_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if exists (
    select 1
    from public.conversations c
    where c.id = p_conversation_id
      and c.kind = 'direct'
      and public.blocked_between(c.direct_user_low, c.direct_user_high)
  ) then
    perform public.api_error('blocked', 'You and this user cannot message each other.');
  end if;
end;
$$;
revoke execute on function public.refuse_if_blocked(uuid) from public, anon, authenticated, service_role;

-- Records a change of a message (message.updated or message.deleted) as the
-- conversation's next durable event, rewrites the payloads of the message's
-- earlier events to its new content (participants replay them, and an old or
-- deleted text must not survive anywhere they can read), and returns the
-- delivery of the new event to the members.
create function public.record_message_change(p_type text, p_user_id uuid, p_message public.messages)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_json jsonb := public.message_json(p_message);
  v_seq bigint := public.append_conversation_event(p_message.conversation_id, p_type, p_user_id, p_message.id, v_json);
begin
  update public.conversation_events e
     set payload = v_json
   where e.conversation_id = p_message.conversation_id
     and e.message_id = p_message.id
     and e.seq < v_seq;

  return public.delivery(
    public.event_envelope(p_type, p_message.conversation_id, v_seq, v_json),
    public.live_recipients(p_message.conversation_id, null)
  );
end;
$$;
revoke execute on function public.record_message_change(text, uuid, public.messages) from public, anon, authenticated, service_role;

-- ===========================================================================
-- Internal RPCs (service_role only; the caller is p_user_id or p_sender)
-- ===========================================================================

-- Stores a message and its message.created event under the next seq, and
-- returns, like every write, {result, deliveries}: the stored message, and
-- the event with every live connection of the members, in one round trip;
-- and notify: who is offline and to be told of it (notification_request in
-- 65_push.sql), or null.
-- Idempotent per (sender, client_msg_id): a repeat returns the stored message
-- with duplicate = true and takes no seq, and delivers message.created again
-- (the stored message as it is now, under its own seq) to the members' live
-- connections: a send whose function died after the commit and before the
-- fan-out reaches the members when the sender retries. Clients de-duplicate
-- by seq, so one that had it already drops it.
-- Rate limited per sender (p_rate_per_minute, p_rate_burst: take_token's
-- 'message' bucket); a repeat is not limited.
create function public.send_message(
  p_sender uuid,
  p_conversation_id uuid,
  p_client_msg_id text,
  p_kind text default 'text',
  p_body text default null,
  p_attachment jsonb default null,
  p_reply_to_id uuid default null,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_kind text := coalesce(p_kind, 'text');
  v_body text;
  v_attachment jsonb;
  v_message public.messages;
  v_duplicate boolean := false;
  v_seq bigint;
  v_now timestamptz;
  v_json jsonb;
  v_recipients jsonb;
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

  -- Plain ASCII, so that it can travel in a header and a log line as it is.
  if p_client_msg_id is null or p_client_msg_id !~ '^[A-Za-z0-9_.:-]{1,100}$' then
    perform public.api_error('invalid_client_msg_id', 'client_msg_id must be 1 to 100 characters of A-Z a-z 0-9 - _ . :');
  end if;

  select m.* into v_message
  from public.messages m
  where m.sender_id = p_sender
    and m.client_msg_id = p_client_msg_id;
  v_duplicate := found;

  if not v_duplicate then
    -- A repeat (a retry after a lost ack) is answered whatever the bucket
    -- holds, and takes nothing from it.
    perform public.take_token(p_sender, 'message', p_rate_per_minute, p_rate_burst);

    -- The lock next_conversation_seq takes, taken now so that the block
    -- check below sees a block committed while this send waited for it.
    perform 1 from public.conversations c where c.id = p_conversation_id for no key update;
    -- A block cuts the pair's direct conversation both ways. Checked for new
    -- messages only: a retry of one sent before the block still finds it.
    perform public.refuse_if_blocked(p_conversation_id);

    if v_kind not in ('text', 'image', 'file') then
      perform public.api_error('invalid_kind', 'kind must be text, image or file.');
    end if;

    v_body := public.validated_body(v_kind, p_body);
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

      -- The sender has now taken part here (presence_visible).
      update public.participants p
         set first_sent_at = v_now
       where p.conversation_id = p_conversation_id
         and p.user_id = p_sender
         and p.first_sent_at is null;
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

  -- A repeat delivers message.created again, the same envelope as the first
  -- send's (with the message's current state, as a replay of its event has:
  -- record_message_change rewrites that payload on an edit or a delete): the
  -- first send's fan-out may never have run. It notifies nobody again
  -- (65_push.sql): a repeat takes no rate token, so a client repeating one
  -- client_msg_id in a loop would otherwise buzz every offline member's
  -- devices each time. A notification lost to a crash between the commit and
  -- the hand-off stays lost; the member sees the message when back online.
  -- Whom message.created reaches live is also who needs no notification.
  -- The recipients go into the answer last, by jsonb_set: every jsonb
  -- function that takes a jsonb argument copies it, and passed down through
  -- delivery, the array and the answer, a room's thousand recipients would be
  -- copied three times rather than once.
  v_recipients := public.live_recipients(p_conversation_id, null);
  return jsonb_set(
    jsonb_build_object(
      'result', jsonb_build_object('message', v_json, 'duplicate', v_duplicate),
      'deliveries', jsonb_build_array(public.delivery(
        public.event_envelope('message.created', p_conversation_id, v_message.seq, v_json),
        null
      )),
      'notify', case when not v_duplicate
        then public.notification_request(p_conversation_id, v_message.id, p_sender, v_recipients) end
    ),
    '{deliveries,0,recipients}',
    coalesce(v_recipients, '[]'::jsonb)
  );
end;
$$;
revoke execute on function public.send_message(uuid, uuid, text, text, text, jsonb, uuid, int, int) from public, anon, authenticated;
grant execute on function public.send_message(uuid, uuid, text, text, text, jsonb, uuid, int, int) to service_role;

-- Who is typing where, and until when: written by send_typing (a stop
-- deletes the row), so that when a typist's last connection goes the others
-- are told the typing stopped (went_offline, 70_presence.sql) rather than
-- left watching it until it expires. Rows that simply expired are pruned by
-- the connection sweep (sweep_connections).
create table public.typing_indicators (
  conversation_id uuid not null,
  user_id uuid not null,
  expires_at timestamptz not null,
  primary key (conversation_id, user_id),
  foreign key (conversation_id, user_id) references public.participants (conversation_id, user_id) on delete cascade
);

create index typing_indicators_user_id_idx on public.typing_indicators (user_id);

-- Deliberately no policy and no grant for any API role: typing reaches
-- others as events only.
alter table public.typing_indicators enable row level security;
revoke all on table public.typing_indicators from anon, authenticated, service_role;

-- A typing indicator (or its stop) from p_user_id: the typing event to the
-- other current participants' live connections (not the typist's own), but
-- for users with a block between them and the typist. Transient: not in the
-- event log, so no seq. It lasts c_ttl unless renewed, so a client that
-- vanishes mid-sentence does not type forever; a stop expires now. Recorded
-- in typing_indicators until it stops.
-- Rate limited per user (take_token's 'typing' bucket).
create function public.send_typing(
  p_user_id uuid,
  p_conversation_id uuid,
  p_is_typing boolean default true,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  c_ttl constant interval := interval '6 seconds';
  v_expires_at timestamptz;
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
  if p_is_typing is null then
    perform public.api_error('invalid_argument', 'is_typing must be true or false.');
  end if;

  perform public.take_token(p_user_id, 'typing', p_rate_per_minute, p_rate_burst);

  v_expires_at := case when p_is_typing then now() + c_ttl else now() end;
  if p_is_typing then
    insert into public.typing_indicators (conversation_id, user_id, expires_at)
    values (p_conversation_id, p_user_id, v_expires_at)
    on conflict (conversation_id, user_id) do update
       set expires_at = excluded.expires_at;
  else
    delete from public.typing_indicators t
     where t.conversation_id = p_conversation_id
       and t.user_id = p_user_id;
  end if;
  return jsonb_build_object(
    'result', jsonb_build_object('expires_at', v_expires_at),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('typing', p_conversation_id, null, jsonb_build_object(
        'user_id', p_user_id, 'is_typing', p_is_typing, 'expires_at', v_expires_at)),
      public.without_blocked(public.live_recipients(p_conversation_id, p_user_id), p_user_id)
    ))
  );
end;
$$;
revoke execute on function public.send_typing(uuid, uuid, boolean, int, int) from public, anon, authenticated;
grant execute on function public.send_typing(uuid, uuid, boolean, int, int) to service_role;

-- Edits the text (or an attachment's caption) of the caller's message. The
-- message.updated event is durable; the earlier events of the message are
-- rewritten to the new content, because participants replay them and the
-- old text must not survive anywhere they can read.
-- An edit says something new, so it is refused where a new message would be:
-- in a direct conversation with a block (deleting stays allowed), and past
-- the sender's 'message' bucket, which sends and edits share.
create function public.edit_message(
  p_user_id uuid,
  p_message_id uuid,
  p_body text,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_message public.messages;
  v_body text;
begin
  if p_user_id is null then
    perform public.api_error('message_not_found', 'No such message.');
  end if;
  -- The bucket before the conversation's lock (12_rate_limits.sql).
  perform public.take_token(p_user_id, 'message', p_rate_per_minute, p_rate_burst);
  v_message := public.lock_message_for_change(p_user_id, p_message_id);
  perform public.refuse_if_blocked(v_message.conversation_id);

  if v_message.deleted_at is not null then
    perform public.api_error('message_deleted', 'A deleted message cannot be edited.');
  end if;

  v_body := public.validated_body(v_message.kind, p_body);

  if v_body is not distinct from v_message.body then
    return jsonb_build_object(
      'result', jsonb_build_object('message', public.message_json(v_message), 'changed', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  update public.messages m
     set body = v_body,
         edited_at = now()
   where m.id = p_message_id
  returning m.* into v_message;

  return jsonb_build_object(
    'result', jsonb_build_object('message', public.message_json(v_message), 'changed', true),
    'deliveries', jsonb_build_array(public.record_message_change('message.updated', p_user_id, v_message))
  );
end;
$$;
revoke execute on function public.edit_message(uuid, uuid, text, int, int) from public, anon, authenticated;
grant execute on function public.edit_message(uuid, uuid, text, int, int) to service_role;

-- Deletes the caller's message: it keeps its place (id, seq) as a tombstone,
-- its content is wiped from the row (the search column follows, so it never
-- matches again) and from every earlier event of the message.
create function public.delete_message(p_user_id uuid, p_message_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_message public.messages := public.lock_message_for_change(p_user_id, p_message_id);
begin
  if v_message.deleted_at is not null then
    return jsonb_build_object(
      'result', jsonb_build_object('message', public.message_json(v_message), 'deleted', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  update public.messages m
     set deleted_at = now(),
         body = null,
         attachment = null
   where m.id = p_message_id
  returning m.* into v_message;

  return jsonb_build_object(
    'result', jsonb_build_object('message', public.message_json(v_message), 'deleted', true),
    'deliveries', jsonb_build_array(public.record_message_change('message.deleted', p_user_id, v_message))
  );
end;
$$;
revoke execute on function public.delete_message(uuid, uuid) from public, anon, authenticated;
grant execute on function public.delete_message(uuid, uuid) to service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

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
      and p.user_id = public.caller_id()
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
revoke execute on function public.list_messages(uuid, bigint, bigint, int) from public, anon;
grant execute on function public.list_messages(uuid, bigint, bigint, int) to authenticated, service_role;
