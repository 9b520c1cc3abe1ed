-- Conversation events: the durable, gap-free log of each conversation, which
-- a client replays to catch up. Every durable change of a conversation takes
-- the next last_seq in the same transaction and writes its event with it.

create table public.conversation_events (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  seq bigint not null
    constraint conversation_events_seq_positive check (seq > 0),
  type text not null
    constraint conversation_events_type_length check (char_length(type) between 1 and 64),
  message_id uuid references public.messages (id) on delete set null,
  actor_id uuid references public.profiles (id) on delete set null,
  payload jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  primary key (conversation_id, seq)
);

comment on column public.conversation_events.payload is
  'What the event pushed to clients. Participants can replay it, so whatever '
  'deletes or edits a message must rewrite the payloads of that message''s earlier events.';

-- health_stats counts conversations with an event in the last 24 hours.
create index conversation_events_created_at_idx on public.conversation_events (created_at);
create index conversation_events_message_id_idx on public.conversation_events (message_id) where message_id is not null;
-- Deleting a user sets actor_id to null in their events.
create index conversation_events_actor_id_idx on public.conversation_events (actor_id) where actor_id is not null;

alter table public.conversation_events enable row level security;
revoke all on table public.conversation_events from anon, authenticated;
grant select on table public.conversation_events to authenticated;
grant all on table public.conversation_events to service_role;

create policy "conversation events are readable by participants"
  on public.conversation_events
  for select
  to authenticated
  using (public.is_participant(conversation_id));

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
revoke execute on function public.next_conversation_seq(uuid) from public, anon, authenticated, service_role;

-- Appends a durable event (other than message.created, which send_message
-- writes together with its message, and conversation.created, seq 1 of a new
-- conversation) and returns its seq, so every change numbers events the same
-- way.
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
revoke execute on function public.append_conversation_event(uuid, text, uuid, uuid, jsonb) from public, anon, authenticated, service_role;

-- The durable events after a seq, in order, as the envelopes the WebSocket
-- pushed (with their payloads as rewritten by later edits and deletes): how a
-- client that was offline catches up.
create function public.list_events(p_conversation_id uuid, p_after_seq bigint default 0, p_limit int default 100)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_limit int := least(greatest(coalesce(p_limit, 100), 1), 500);
  v_rows public.conversation_events[];
begin
  perform public.require_participant(p_conversation_id, public.caller_id());
  if p_after_seq < 0 then
    perform public.api_error('invalid_argument', 'after_seq must not be negative.');
  end if;

  -- One row more than the page says whether there is more.
  v_rows := array(
    select e
    from public.conversation_events e
    where e.conversation_id = p_conversation_id
      and e.seq > coalesce(p_after_seq, 0)
    order by e.seq
    limit v_limit + 1
  );

  return jsonb_build_object(
    'events', (
      select coalesce(jsonb_agg(
        public.event_envelope(r.type, r.conversation_id, r.seq, r.payload)
          || jsonb_build_object('actor_id', r.actor_id, 'created_at', r.created_at)
        order by r.seq
      ), '[]'::jsonb)
      from unnest(v_rows[1:v_limit]) as r
    ),
    'has_more', coalesce(array_length(v_rows, 1), 0) > v_limit,
    'last_seq', (select c.last_seq from public.conversations c where c.id = p_conversation_id)
  );
end;
$$;
revoke execute on function public.list_events(uuid, bigint, int) from public, anon;
grant execute on function public.list_events(uuid, bigint, int) to authenticated, service_role;
