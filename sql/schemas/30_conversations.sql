-- Conversations and their participants: direct (1:1), group, or public room,
-- optionally about a thing; membership, and the RPCs that change it.
--
-- Users read through RLS and never write conversations or participants
-- directly: every durable change goes through a SECURITY DEFINER function that
-- checks, takes the next seq and writes the event in one transaction.
--
-- participants.archived and participants.muted are a member's own settings;
-- fellow participants must not learn who muted them, so those columns are not
-- granted (a request for them, or for *, fails); the owner reads them through
-- get_conversation and list_conversations. Neither are last_read_seq and
-- last_delivered_seq: a room member's read and delivered positions are theirs
-- alone, which a column grant cannot say per kind of conversation, so receipts
-- (groups and direct conversations) are read through the RPCs
-- (conversation_json).

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  -- direct, group or room. This column, name, the context and the direct
  -- pair are checked by conversations_fields_check, below.
  kind text not null,
  -- Shown in lists and notifications, and how rooms are found: nothing
  -- invisible or reordering (public.has_invisible), so that a name can
  -- neither look empty nor pose as another (validated_conversation_name).
  name text,
  context_type text,
  context_id text,
  created_by uuid references public.profiles (id) on delete set null,
  created_at timestamptz not null default now(),
  -- The sequence number of the latest durable event; the next event takes
  -- last_seq + 1 in the same transaction (the row lock serializes writers).
  last_seq bigint not null default 0
    constraint conversations_last_seq_nonnegative check (last_seq >= 0),
  -- The ordered pair of a direct conversation, so the pair is unique.
  direct_user_low uuid,
  direct_user_high uuid
);

-- What a conversation's own fields must hold, checked by a trigger on those
-- columns rather than by CHECK constraints. Postgres reads every CHECK of a
-- table again for each statement that writes one of its rows, and every
-- message sent writes last_seq here: these seven checks were about a tenth of
-- the server's instructions for a message to a group
-- (bench/sql/send_message_callgrind.sh). The refusal is the one a CHECK
-- gives: check_violation, naming the constraint that was broken.
create function public.check_conversation_fields()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_broken text;
begin
  -- As for a CHECK, an unknown (null) outcome passes.
  v_broken := case
    -- Left to kind's NOT NULL, which Postgres checks after this trigger.
    when new.kind is null
      then null
    when not coalesce(new.kind in ('direct', 'group', 'room'), true)
      then 'conversations_kind_check'
    when not coalesce(char_length(new.name) between 1 and 200, true)
      then 'conversations_name_length'
    when coalesce(public.has_invisible(new.name), false)
      then 'conversations_name_text'
    when not coalesce(char_length(new.context_type) between 1 and 100, true)
      then 'conversations_context_type_length'
    when not coalesce(char_length(new.context_id) between 1 and 100, true)
      then 'conversations_context_id_length'
    when (new.context_type is null) <> (new.context_id is null)
      then 'conversations_context_pair'
    when not coalesce(
      case when new.kind = 'direct'
        then new.direct_user_low is not null
         and new.direct_user_high is not null
         and new.direct_user_low < new.direct_user_high
        else new.direct_user_low is null and new.direct_user_high is null
      end, true)
      then 'conversations_direct_pair'
  end;
  if v_broken is not null then
    perform public.raise_check_violation('conversations', v_broken);
  end if;
  return new;
end;
$$;
revoke execute on function public.check_conversation_fields() from public, anon, authenticated, service_role;

-- Not fired by an update of last_seq alone: that is what sending does.
create trigger conversations_fields_check
  before insert or update of kind, name, context_type, context_id, direct_user_low, direct_user_high
  on public.conversations
  for each row execute function public.check_conversation_fields();

-- One 1:1 per pair and context, even when both users open it at once:
-- open_direct_conversation inserts with ON CONFLICT on this index.
create unique index conversations_direct_pair_key
  on public.conversations (direct_user_low, direct_user_high, coalesce(context_type, ''), coalesce(context_id, ''))
  where kind = 'direct';

-- Public rooms are listed for everyone.
create index conversations_room_idx on public.conversations (created_at) where kind = 'room';

-- Room names are how rooms are found, so two rooms may not share one, in any
-- letter case. Enforced by the database, not only by the RPCs' checks, because
-- two creators can race for the same name; the RPCs turn the violation into
-- room_name_taken. Groups and direct conversations may share names. A name
-- holds nothing invisible (conversations_name_text), so two names that show
-- alike are alike here too: "Lima" and "Li" U+200B "ma" cannot both exist.
create unique index conversations_room_name_key
  on public.conversations (lower(name))
  where kind = 'room';

-- Deleting a user sets created_by to null in their conversations.
create index conversations_created_by_idx on public.conversations (created_by) where created_by is not null;

alter table public.conversations enable row level security;
revoke all on table public.conversations from anon, authenticated;
grant select on table public.conversations to authenticated;
grant all on table public.conversations to service_role;

-- Membership; left_at set means a former member.
create table public.participants (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  role text not null default 'member'
    constraint participants_role_check check (role in ('owner', 'member')),
  joined_at timestamptz not null default now(),
  left_at timestamptz,
  -- Read watermark: unread = messages by others with seq > last_read_seq.
  last_read_seq bigint not null default 0
    constraint participants_last_read_seq_nonnegative check (last_read_seq >= 0),
  archived boolean not null default false,
  muted boolean not null default false,
  -- When the member first sent a message here (send_message): having taken
  -- part, which is what makes two members contacts (presence_visible).
  -- Private like archived and muted: not granted to users.
  first_sent_at timestamptz,
  -- Delivered watermark: every message up to it reached a device of the
  -- member (mark_delivered). Reading is the higher watermark: mark_read
  -- raises this one with it, so it is never below last_read_seq.
  last_delivered_seq bigint not null default 0
    constraint participants_last_delivered_seq_nonnegative check (last_delivered_seq >= 0),
  primary key (conversation_id, user_id)
);

create index participants_user_id_idx on public.participants (user_id);

alter table public.participants enable row level security;
revoke all on table public.participants from anon, authenticated;
-- Not archived, muted, last_read_seq and last_delivered_seq (see above).
grant select (conversation_id, user_id, role, joined_at, left_at)
  on table public.participants to authenticated;
grant all on table public.participants to service_role;

-- Whether the calling user is a current participant of a conversation.
-- SECURITY DEFINER so that policies on participants (and on tables whose
-- policies consult participants) do not recurse into participants' own RLS.
create function public.is_participant(p_conversation_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = (select public.caller_id())
      and p.left_at is null
  )
$$;

comment on function public.is_participant(uuid) is
  'RLS helper: is the caller (public.caller_id()) a current participant of the conversation?';

-- Policies run it with the querying user's privileges, so authenticated needs
-- EXECUTE; it only ever answers about the caller's own membership.
revoke execute on function public.is_participant(uuid) from public, anon;
grant execute on function public.is_participant(uuid) to authenticated, service_role;

-- Public rooms can be browsed (and then joined) by anyone signed in. One
-- policy, not one per audience: every permissive policy runs for every row.
create policy "conversations are readable by their participants, rooms by signed-in users"
  on public.conversations
  for select
  to authenticated
  using ((kind = 'room' and (select public.caller_id()) is not null) or public.is_participant(id));

-- Current members only, as the API lists them: someone who left is not
-- shown to the members, whether they joined before or after (the simplest
-- rule that hides a former member from newcomers; the conversation's events
-- still say who joined and left while the reader was a member).
create policy "current participants are readable by fellow participants"
  on public.participants
  for select
  to authenticated
  using (left_at is null and public.is_participant(conversation_id));

-- ===========================================================================
-- Helpers
-- ===========================================================================

-- The Conversation JSON shape, with its current participants; each carries
-- last_read_seq and last_delivered_seq, which is how clients show read and
-- delivery receipts (null in a room: a room's members did not sign up for
-- each other's receipts, and mark_read and mark_delivered tell only the
-- member; a member's own read position is in me_json), and the public part
-- of the participant's profile (never presence: that has its own rule), so a
-- chat screen can name everyone it shows. Former members are not listed.
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
        jsonb_build_object('user_id', p.user_id, 'role', p.role, 'joined_at', p.joined_at,
                           'last_read_seq', case when c.kind <> 'room' then p.last_read_seq end,
                           'last_delivered_seq', case when c.kind <> 'room' then p.last_delivered_seq end,
                           'profile', public.public_profile_json(u))
        order by p.joined_at, p.user_id
      )
      from public.participants p
      join public.profiles u on u.id = p.user_id
      where p.conversation_id = c.id
        and p.left_at is null
    ), '[]'::jsonb)
  )
  from public.conversations c
  where c.id = p_conversation_id
$$;
revoke execute on function public.conversation_json(uuid) from public, anon, authenticated, service_role;

-- Live connections of a conversation's current participants, as Recipient
-- JSON, optionally leaving one user out (typing goes to the others only).
-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
-- Generic plans, here and in user_recipients under it: given the members as
-- an array, Postgres judged a plan for that particular array cheaper every
-- time, so it planned user_recipients' query again on every send (about a
-- tenth of a send into a group); the generic plan (the connections' user_id
-- index) is the one it finds for a group anyway.
create function public.live_recipients(p_conversation_id uuid, p_except_user_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return public.user_recipients(array(
    select p.user_id
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and (p_except_user_id is null or p.user_id <> p_except_user_id)
  ));
end;
$$;
revoke execute on function public.live_recipients(uuid, uuid) from public, anon, authenticated, service_role;

-- Recipients (Recipient JSON) but for the users with a block between them
-- and p_user_id, either way: what a block hides of a user (typing, read
-- receipts) reaches neither of the two.
create function public.without_blocked(p_recipients jsonb, p_user_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(r order by r ->> 'user_id', r ->> 'connection_id'), '[]'::jsonb)
    from jsonb_array_elements(p_recipients) as r
    where not public.blocked_between(p_user_id, (r ->> 'user_id')::uuid)
  );
end;
$$;
revoke execute on function public.without_blocked(jsonb, uuid) from public, anon, authenticated, service_role;

-- The caller of a user-facing RPC. service_role without a user's claims has
-- no caller, and must not be mistaken for one.
create function public.require_caller()
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_me uuid := public.caller_id();
begin
  if v_me is null then
    perform public.api_error('invalid_argument', 'A signed-in user is required.');
  end if;
  return v_me;
end;
$$;
revoke execute on function public.require_caller() from public, anon, authenticated, service_role;

-- A user's current participation, or not_a_participant. The same refusal for
-- a conversation that does not exist, so the answer reveals nothing.
create function public.require_participant(p_conversation_id uuid, p_user_id uuid)
returns public.participants
language plpgsql
stable
set search_path = ''
as $$
declare
  v_participant public.participants;
begin
  select p.* into v_participant
  from public.participants p
  where p.conversation_id = p_conversation_id
    and p.user_id = p_user_id
    and p.left_at is null;
  if not found then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
  return v_participant;
end;
$$;
revoke execute on function public.require_participant(uuid, uuid) from public, anon, authenticated, service_role;

-- Locks the conversation row for a change made by one of its participants and
-- returns the participation as of the lock. Outsiders are refused before any
-- lock is taken (they must not be able to hold up someone else's
-- conversation); the check is repeated under the lock because a concurrent
-- leave may have committed in between, and every membership change takes this
-- lock first.
create function public.lock_as_participant(p_conversation_id uuid, p_user_id uuid)
returns public.participants
language plpgsql
set search_path = ''
as $$
begin
  perform public.require_participant(p_conversation_id, p_user_id);
  -- The lock next_conversation_seq's update takes; it does not block inserts
  -- of rows referencing the conversation, as FOR UPDATE would.
  perform 1
  from public.conversations c
  where c.id = p_conversation_id
  for no key update;
  return public.require_participant(p_conversation_id, p_user_id);
end;
$$;
revoke execute on function public.lock_as_participant(uuid, uuid) from public, anon, authenticated, service_role;

-- A conversation name as stored: trimmed of blank characters, 1 to 200
-- characters, nothing invisible or reordering (has_invisible: control
-- characters, bidi controls and marks, zero-width characters, fillers; names
-- are shown in lists and notifications, and find rooms), or invalid_name.
-- Rust: chat::domain's NewConversation and ConversationPatch.
create function public.validated_conversation_name(p_name text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_name text := public.trim_blank(p_name);
begin
  if v_name is null
     or v_name = ''
     or char_length(v_name) > 200
     or public.has_invisible(v_name) then
    perform public.api_error('invalid_name',
      'The name must be 1 to 200 characters, without control, invisible or bidirectional formatting characters.');
  end if;
  return v_name;
end;
$$;
revoke execute on function public.validated_conversation_name(text) from public, anon, authenticated, service_role;

-- The data of a member.joined event: who joined, as what, added by whom, and
-- the newcomer's public profile, so clients need no lookup to name them.
create function public.member_joined_data(p_member public.participants, p_added_by uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'user_id', p_member.user_id, 'role', p_member.role,
    'joined_at', p_member.joined_at, 'added_by', p_added_by,
    'profile', (select public.public_profile_json(u) from public.profiles u where u.id = p_member.user_id))
$$;
revoke execute on function public.member_joined_data(public.participants, uuid) from public, anon, authenticated, service_role;

-- Refuses (blocked) to put users in a conversation with p_user_id when a
-- block stands between p_user_id and any of them, either way
-- (15_blocks.sql): a new group would otherwise carry what the block cuts
-- from their direct conversation. Like that refusal, it says neither who
-- blocked whom nor which of the users it is.
create function public.refuse_blocked_members(p_user_id uuid, p_member_ids uuid[])
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if exists (select 1 from unnest(p_member_ids) as m where public.blocked_between(p_user_id, m)) then
    perform public.api_error('blocked', 'You and one of these users cannot message each other.');
  end if;
end;
$$;
revoke execute on function public.refuse_blocked_members(uuid, uuid[]) from public, anon, authenticated, service_role;

-- ===========================================================================
-- Internal RPCs (service_role only; the caller is p_user_id)
-- ===========================================================================

-- Finds or creates the 1:1 between the caller and another user, optionally
-- about a context (e.g. 'listing' + id). Concurrency-safe: the unique index on
-- the ordered pair (+ context) lets exactly one creator win; the other finds it.
-- Opening a 1:1 the caller had left brings the caller back (member.joined);
-- the other side is never pulled back by someone else.
-- Rate limited per user, finding included (take_token's 'conversation' bucket).
create function public.open_direct_conversation(
  p_user_id uuid,
  p_other_user_id uuid,
  p_context_type text default null,
  p_context_id text default null,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_low uuid;
  v_high uuid;
  v_id uuid;
  v_created boolean := false;
  v_rejoined public.participants;
  v_payload jsonb;
  v_seq bigint;
  v_json jsonb;
  v_deliveries jsonb := '[]'::jsonb;
begin
  if p_user_id is null then
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
  if p_other_user_id = p_user_id then
    perform public.api_error('invalid_participant', 'You cannot open a direct conversation with yourself.');
  end if;
  if not exists (select 1 from public.profiles where id = p_other_user_id) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  if not exists (select 1 from public.profiles where id = p_user_id) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  -- Neither finds nor creates: a block cuts the pair's direct conversations.
  -- The refusal does not say which of the two blocked the other.
  if public.blocked_between(p_user_id, p_other_user_id) then
    perform public.api_error('blocked', 'You and this user cannot message each other.');
  end if;
  -- Shares the 'conversation' bucket with create_conversation.
  perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);

  v_low := least(p_user_id, p_other_user_id);
  v_high := greatest(p_user_id, p_other_user_id);

  insert into public.conversations
    (kind, context_type, context_id, created_by, direct_user_low, direct_user_high, last_seq)
  values
    ('direct', p_context_type, p_context_id, p_user_id, v_low, v_high, 1)
  on conflict (direct_user_low, direct_user_high, coalesce(context_type, ''), coalesce(context_id, ''))
    where kind = 'direct'
    do nothing
  returning id into v_id;

  if v_id is not null then
    v_created := true;

    insert into public.participants (conversation_id, user_id, role)
    values (v_id, p_user_id, 'owner'),
           (v_id, p_other_user_id, 'member');

    v_json := public.conversation_json(v_id);
    insert into public.conversation_events (conversation_id, seq, type, actor_id, payload)
    values (v_id, 1, 'conversation.created', p_user_id, v_json);

    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('conversation.created', v_id, 1, v_json),
      public.live_recipients(v_id, null)
    ));
  else
    -- Someone created it before (possibly a moment ago, concurrently).
    select c.id into strict v_id
    from public.conversations c
    where c.kind = 'direct'
      and c.direct_user_low = v_low
      and c.direct_user_high = v_high
      and coalesce(c.context_type, '') = coalesce(p_context_type, '')
      and coalesce(c.context_id, '') = coalesce(p_context_id, '');

    -- Conversation row first, then the participant: the order of every
    -- membership change.
    perform 1 from public.conversations c where c.id = v_id for no key update;

    -- A member who comes back has not taken part yet (presence_visible):
    -- what they wrote before leaving does not make contacts again.
    update public.participants p
       set left_at = null,
           joined_at = now(),
           first_sent_at = null
     where p.conversation_id = v_id
       and p.user_id = p_user_id
       and p.left_at is not null
    returning p.* into v_rejoined;

    if found then
      v_payload := public.member_joined_data(v_rejoined, null);
      v_seq := public.append_conversation_event(v_id, 'member.joined', p_user_id, null, v_payload);
      v_deliveries := jsonb_build_array(public.delivery(
        public.event_envelope('member.joined', v_id, v_seq, v_payload),
        public.live_recipients(v_id, null)
      ));
    end if;
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', public.conversation_json(v_id), 'created', v_created),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.open_direct_conversation(uuid, uuid, text, text, int, int) from public, anon, authenticated;
grant execute on function public.open_direct_conversation(uuid, uuid, text, text, int, int) to service_role;

-- Creates a group or a public room with the caller as owner and the given
-- users as members, its conversation.created event as seq 1. Refused
-- (blocked) when a block stands between the caller and any of the members.
-- Rate limited per user (take_token's 'conversation' bucket).
create function public.create_conversation(
  p_user_id uuid,
  p_kind text,
  p_name text,
  p_member_ids uuid[] default '{}',
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_name text;
  v_members uuid[];
  v_id uuid;
  v_json jsonb;
  v_constraint text;
begin
  if p_user_id is null or not exists (select 1 from public.profiles where id = p_user_id) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);
  if p_kind is null or p_kind not in ('group', 'room') then
    perform public.api_error('invalid_argument', 'kind must be group or room.');
  end if;
  v_name := public.validated_conversation_name(p_name);

  if array_position(p_member_ids, null) is not null then
    perform public.api_error('invalid_argument', 'member_ids must be user ids.');
  end if;
  -- The caller is the owner, not one of the members.
  v_members := array(
    select distinct m
    from unnest(coalesce(p_member_ids, '{}'::uuid[])) as m
    where m <> p_user_id
    order by m
  );
  if cardinality(v_members) > 100 then
    perform public.api_error('too_many_members', 'At most 100 members can be added at once.');
  end if;
  if exists (
    select 1
    from unnest(v_members) as m
    where not exists (select 1 from public.profiles p where p.id = m)
  ) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  perform public.refuse_blocked_members(p_user_id, v_members);
  if p_kind = 'room' and exists (
    select 1 from public.conversations c where c.kind = 'room' and lower(c.name) = lower(v_name)
  ) then
    perform public.api_error('room_name_taken', 'A room with this name already exists.');
  end if;

  -- A subtransaction: a concurrent creator may take the room name between
  -- the check above and this insert; the unique index decides.
  begin
    insert into public.conversations (kind, name, created_by, last_seq)
    values (p_kind, v_name, p_user_id, 1)
    returning id into v_id;
  exception
    when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      if v_constraint is distinct from 'conversations_room_name_key' then
        raise;
      end if;
      perform public.api_error('room_name_taken', 'A room with this name already exists.');
  end;

  insert into public.participants (conversation_id, user_id, role)
  values (v_id, p_user_id, 'owner');
  insert into public.participants (conversation_id, user_id, role)
  select v_id, m, 'member' from unnest(v_members) as m;

  v_json := public.conversation_json(v_id);
  insert into public.conversation_events (conversation_id, seq, type, actor_id, payload)
  values (v_id, 1, 'conversation.created', p_user_id, v_json);

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', v_json),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('conversation.created', v_id, 1, v_json),
      public.live_recipients(v_id, null)
    ))
  );
end;
$$;
revoke execute on function public.create_conversation(uuid, text, text, uuid[], int, int) from public, anon, authenticated;
grant execute on function public.create_conversation(uuid, text, text, uuid[], int, int) to service_role;

-- Renames a group or room (owner only, a durable event for everyone) and/or
-- changes the caller's own archived / muted settings (private, no event).
-- Every check comes before the first write. A rename is rate limited per user
-- (take_token's 'conversation' bucket); the settings are not.
create function public.update_conversation(
  p_user_id uuid,
  p_conversation_id uuid,
  p_name text default null,
  p_archived boolean default null,
  p_muted boolean default null,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me public.participants;
  v_conversation public.conversations;
  v_name text;
  v_payload jsonb;
  v_seq bigint;
  v_constraint text;
  v_deliveries jsonb := '[]'::jsonb;
begin
  if p_name is null and p_archived is null and p_muted is null then
    perform public.api_error('invalid_argument', 'Give name, archived or muted.');
  end if;

  if p_name is null then
    -- Only the caller's own row changes: no need to hold up the conversation.
    v_me := public.require_participant(p_conversation_id, p_user_id);
  else
    -- The bucket before the conversation's lock (12_rate_limits.sql); an
    -- outsider is refused before either.
    perform public.require_participant(p_conversation_id, p_user_id);
    perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);
    v_me := public.lock_as_participant(p_conversation_id, p_user_id);
    select c.* into v_conversation from public.conversations c where c.id = p_conversation_id;
    if v_conversation.kind = 'direct' then
      perform public.api_error('unsupported_for_kind', 'A direct conversation has no name.');
    end if;
    if v_me.role <> 'owner' then
      perform public.api_error('not_owner', 'Only the owner can rename the conversation.');
    end if;
    v_name := public.validated_conversation_name(p_name);
    if v_conversation.kind = 'room' and exists (
      select 1
      from public.conversations c
      where c.kind = 'room'
        and lower(c.name) = lower(v_name)
        and c.id <> p_conversation_id
    ) then
      perform public.api_error('room_name_taken', 'A room with this name already exists.');
    end if;
  end if;

  if v_name is not null and v_name is distinct from v_conversation.name then
    begin
      update public.conversations c set name = v_name where c.id = p_conversation_id;
    exception
      when unique_violation then
        get stacked diagnostics v_constraint = constraint_name;
        if v_constraint is distinct from 'conversations_room_name_key' then
          raise;
        end if;
        perform public.api_error('room_name_taken', 'A room with this name already exists.');
    end;
    v_payload := jsonb_build_object('name', v_name, 'updated_by', p_user_id);
    v_seq := public.append_conversation_event(p_conversation_id, 'conversation.updated', p_user_id, null, v_payload);
    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('conversation.updated', p_conversation_id, v_seq, v_payload),
      public.live_recipients(p_conversation_id, null)
    ));
  end if;

  if p_archived is not null or p_muted is not null then
    update public.participants p
       set archived = coalesce(p_archived, p.archived),
           muted = coalesce(p_muted, p.muted)
     where p.conversation_id = p_conversation_id
       and p.user_id = p_user_id
    returning p.* into v_me;
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object(
      'conversation', public.receipts_seen_by(public.conversation_json(p_conversation_id), p_user_id),
      'me', public.me_json(v_me)
    ),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.update_conversation(uuid, uuid, text, boolean, boolean, int, int) from public, anon, authenticated;
grant execute on function public.update_conversation(uuid, uuid, text, boolean, boolean, int, int) to service_role;

-- Adds users to a group or room (owner only). Current members are skipped;
-- former members come back as members. Each addition is a durable
-- member.joined event; the added users are also sent the conversation itself,
-- which they did not know. Refused (blocked) when a block stands between the
-- owner and any of the users. Rate limited per user, per call (take_token's
-- 'conversation' bucket).
create function public.add_members(
  p_user_id uuid,
  p_conversation_id uuid,
  p_user_ids uuid[],
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me public.participants;
  v_kind text;
  v_ids uuid[];
  v_user uuid;
  v_row public.participants;
  v_payload jsonb;
  v_seq bigint;
  v_added uuid[] := '{}'::uuid[];
  v_events jsonb := '[]'::jsonb;
  v_json jsonb;
  v_recipients jsonb;
  v_deliveries jsonb := '[]'::jsonb;
begin
  v_me := public.require_participant(p_conversation_id, p_user_id);
  select c.kind into v_kind from public.conversations c where c.id = p_conversation_id;
  if v_kind = 'direct' then
    perform public.api_error('unsupported_for_kind', 'A direct conversation has exactly its two users.');
  end if;
  if v_me.role <> 'owner' then
    perform public.api_error('not_owner', 'Only the owner can add members.');
  end if;
  if p_user_ids is null or cardinality(p_user_ids) = 0 then
    perform public.api_error('invalid_argument', 'user_ids must name at least one user.');
  end if;
  if array_position(p_user_ids, null) is not null then
    perform public.api_error('invalid_argument', 'user_ids must be user ids.');
  end if;
  -- Deduplicated, in the order given.
  v_ids := array(
    select u
    from unnest(p_user_ids) with ordinality as t (u, i)
    group by u
    order by min(i)
  );
  if cardinality(v_ids) > 100 then
    perform public.api_error('too_many_members', 'At most 100 members can be added at once.');
  end if;
  if exists (
    select 1
    from unnest(v_ids) as u
    where not exists (select 1 from public.profiles p where p.id = u)
  ) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;
  perform public.refuse_blocked_members(p_user_id, v_ids);
  -- The bucket before the conversation's lock (12_rate_limits.sql).
  perform public.take_token(p_user_id, 'conversation', p_rate_per_minute, p_rate_burst);

  -- Ownership as of the lock: the owner may have left meanwhile.
  v_me := public.lock_as_participant(p_conversation_id, p_user_id);
  if v_me.role <> 'owner' then
    perform public.api_error('not_owner', 'Only the owner can add members.');
  end if;

  foreach v_user in array v_ids loop
    insert into public.participants (conversation_id, user_id, role, joined_at)
    values (p_conversation_id, v_user, 'member', now())
    -- A former member comes back as someone who has not taken part yet:
    -- what they wrote before leaving does not make contacts again
    -- (presence_visible), or being added back would show their presence
    -- without their doing anything.
    on conflict (conversation_id, user_id) do update
       set left_at = null,
           joined_at = excluded.joined_at,
           role = 'member',
           first_sent_at = null
     where public.participants.left_at is not null
    returning * into v_row;

    if found then
      v_added := v_added || v_user;
      v_payload := public.member_joined_data(v_row, p_user_id);
      v_seq := public.append_conversation_event(p_conversation_id, 'member.joined', p_user_id, null, v_payload);
      v_events := v_events || jsonb_build_array(public.event_envelope('member.joined', p_conversation_id, v_seq, v_payload));
    end if;
  end loop;

  v_json := public.conversation_json(p_conversation_id);
  if cardinality(v_added) > 0 then
    -- The conversation first: an added user's client learns of it before
    -- the events that refer to it. Not durable (no seq): it is a snapshot.
    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('conversation.created', p_conversation_id, null, v_json),
      public.user_recipients(v_added)
    ));
    v_recipients := public.live_recipients(p_conversation_id, null);
    v_deliveries := v_deliveries || coalesce((
      select jsonb_agg(public.delivery(e, v_recipients) order by (e ->> 'seq')::bigint)
      from jsonb_array_elements(v_events) as e
    ), '[]'::jsonb);
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', v_json, 'added', to_jsonb(v_added)),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.add_members(uuid, uuid, uuid[], int, int) from public, anon, authenticated;
grant execute on function public.add_members(uuid, uuid, uuid[], int, int) to service_role;

-- Joins a public room. Joining again is not an error (joined = false).
-- A room whose members all left has no owner; whoever joins it next becomes
-- the owner, so a room with members always has one (as leave_conversation
-- keeps it).
-- Rate limited per user (take_token's 'join' bucket), joining again included.
create function public.join_room(
  p_user_id uuid,
  p_conversation_id uuid,
  p_rate_per_minute int default null,
  p_rate_burst int default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_role text;
  v_row public.participants;
  v_payload jsonb;
  v_seq bigint;
begin
  if p_user_id is null or not exists (select 1 from public.profiles where id = p_user_id) then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;
  perform public.take_token(p_user_id, 'join', p_rate_per_minute, p_rate_burst);

  -- Only rooms are open to join; anything else looks like nothing at all.
  perform 1
  from public.conversations c
  where c.id = p_conversation_id
    and c.kind = 'room'
  for no key update;
  if not found then
    perform public.api_error('conversation_not_found', 'No such room.');
  end if;

  if exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.user_id = p_user_id
      and p.left_at is null
  ) then
    return jsonb_build_object(
      'result', jsonb_build_object('conversation', public.conversation_json(p_conversation_id), 'joined', false),
      'deliveries', '[]'::jsonb
    );
  end if;

  v_role := case when exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and p.role = 'owner'
  ) then 'member' else 'owner' end;

  insert into public.participants (conversation_id, user_id, role, joined_at)
  values (p_conversation_id, p_user_id, v_role, now())
  -- A former member has not taken part since coming back (see add_members).
  on conflict (conversation_id, user_id) do update
     set left_at = null,
         joined_at = excluded.joined_at,
         role = excluded.role,
         first_sent_at = null
  returning * into v_row;

  v_payload := public.member_joined_data(v_row, null);
  v_seq := public.append_conversation_event(p_conversation_id, 'member.joined', p_user_id, null, v_payload);

  return jsonb_build_object(
    'result', jsonb_build_object('conversation', public.conversation_json(p_conversation_id), 'joined', true),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('member.joined', p_conversation_id, v_seq, v_payload),
      public.live_recipients(p_conversation_id, null)
    ))
  );
end;
$$;
revoke execute on function public.join_room(uuid, uuid, int, int) from public, anon, authenticated;
grant execute on function public.join_room(uuid, uuid, int, int) to service_role;

-- Leaves a conversation. If that leaves no owner among the current members,
-- the longest-standing member becomes the owner, so someone can still manage
-- it. The leaver's own devices get the event too (to drop the conversation).
create function public.leave_conversation(p_user_id uuid, p_conversation_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_left_at timestamptz;
  v_new_owner uuid;
  v_payload jsonb;
  v_seq bigint;
begin
  perform public.lock_as_participant(p_conversation_id, p_user_id);

  update public.participants p
     set left_at = now()
   where p.conversation_id = p_conversation_id
     and p.user_id = p_user_id
  returning p.left_at into v_left_at;

  if not exists (
    select 1
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and p.role = 'owner'
  ) then
    update public.participants p
       set role = 'owner'
     where (p.conversation_id, p.user_id) = (
       select q.conversation_id, q.user_id
       from public.participants q
       where q.conversation_id = p_conversation_id
         and q.left_at is null
       order by q.joined_at, q.user_id
       limit 1
     )
    returning p.user_id into v_new_owner;
  end if;

  v_payload := jsonb_build_object('user_id', p_user_id, 'left_at', v_left_at, 'new_owner_id', v_new_owner);
  v_seq := public.append_conversation_event(p_conversation_id, 'member.left', p_user_id, null, v_payload);

  return jsonb_build_object(
    'result', jsonb_build_object('conversation_id', p_conversation_id, 'left', true, 'seq', v_seq),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('member.left', p_conversation_id, v_seq, v_payload),
      public.live_recipients(p_conversation_id, null) || public.user_recipients(array[p_user_id])
    ))
  );
end;
$$;
revoke execute on function public.leave_conversation(uuid, uuid) from public, anon, authenticated;
grant execute on function public.leave_conversation(uuid, uuid) to service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- Public rooms, most recently active first, a page at a time.
create function public.list_rooms(p_limit int default 50, p_cursor text default null)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_limit int := least(greatest(coalesce(p_limit, 50), 1), 100);
  v_after_at timestamptz;
  v_after_id uuid;
begin
  if p_cursor is not null then
    select d.o_at, d.o_id into v_after_at, v_after_id from public.decode_cursor(p_cursor) d;
  end if;

  return public.cursor_page('rooms', (
    select coalesce(jsonb_agg(jsonb_build_object(
      'id', r.id,
      'name', r.name,
      'created_by', r.created_by,
      'created_at', r.created_at,
      'member_count', (select count(*) from public.participants p where p.conversation_id = r.id and p.left_at is null),
      'message_count', (select count(*) from public.messages m where m.conversation_id = r.id and m.deleted_at is null),
      'last_activity_at', r.last_activity_at,
      'joined', exists (
        select 1 from public.participants p
        where p.conversation_id = r.id and p.user_id = v_me and p.left_at is null
      )
    ) order by r.last_activity_at desc, r.id desc), '[]'::jsonb)
    from (
      select c.id, c.name, c.created_by, c.created_at, a.at as last_activity_at
      from public.conversations c
      left join public.conversation_events e on e.conversation_id = c.id and e.seq = c.last_seq
      cross join lateral (select coalesce(e.created_at, c.created_at) as at) a
      where c.kind = 'room'
        and (v_after_id is null or (a.at, c.id) < (v_after_at, v_after_id))
      order by a.at desc, c.id desc
      -- One row more than the page says whether there is another page.
      limit v_limit + 1
    ) r
  ), v_limit);
end;
$$;
revoke execute on function public.list_rooms(int, text) from public, anon;
grant execute on function public.list_rooms(int, text) to authenticated, service_role;

-- The caller's current conversations, most recently active first, a page at
-- a time, each with what a conversation list shows (last message, unread
-- count, the caller's own settings, and for a direct conversation the
-- public profile of the other user: the counterpart, also after they left;
-- null once their account is gone).
create function public.list_conversations(
  p_limit int default 20,
  p_cursor text default null,
  p_archived boolean default null
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 100);
  v_after_at timestamptz;
  v_after_id uuid;
begin
  if p_cursor is not null then
    select d.o_at, d.o_id into v_after_at, v_after_id from public.decode_cursor(p_cursor) d;
  end if;

  return public.cursor_page('conversations', (
    select coalesce(jsonb_agg(jsonb_build_object(
      'id', r.id,
      'kind', r.kind,
      'name', r.name,
      'context_type', r.context_type,
      'context_id', r.context_id,
      'created_at', r.created_at,
      'last_seq', r.last_seq,
      'last_activity_at', r.last_activity_at,
      'member_count', (select count(*) from public.participants q where q.conversation_id = r.id and q.left_at is null),
      'other_user_id', r.other_user_id,
      'counterpart', case when u.id is not null then public.public_profile_json(u) end,
      'last_message', (
        select public.message_json(m)
        from public.messages m
        where m.conversation_id = r.id
        order by m.seq desc
        limit 1
      ),
      'unread_count', public.unread_count(r.id, v_me, r.last_read_seq),
      'last_read_seq', r.last_read_seq,
      'archived', r.archived,
      'muted', r.muted,
      'role', r.role
    ) order by r.last_activity_at desc, r.id desc), '[]'::jsonb)
    from (
      select c.id, c.kind, c.name, c.context_type, c.context_id, c.created_at, c.last_seq,
             case when c.direct_user_low = v_me then c.direct_user_high else c.direct_user_low end as other_user_id,
             a.at as last_activity_at,
             p.role, p.last_read_seq, p.archived, p.muted
      from public.participants p
      join public.conversations c on c.id = p.conversation_id
      left join public.conversation_events e on e.conversation_id = c.id and e.seq = c.last_seq
      cross join lateral (select coalesce(e.created_at, c.created_at) as at) a
      where p.user_id = v_me
        and p.left_at is null
        and (p_archived is null or p.archived = p_archived)
        and (v_after_id is null or (a.at, c.id) < (v_after_at, v_after_id))
      order by a.at desc, c.id desc
      limit v_limit + 1
    ) r
    -- The counterpart's profile, joined to the page's rows in the same query.
    left join public.profiles u on u.id = r.other_user_id
  ), v_limit);
end;
$$;
revoke execute on function public.list_conversations(int, text, boolean) from public, anon;
grant execute on function public.list_conversations(int, text, boolean) to authenticated, service_role;

-- One conversation and the caller's own settings in it (the receipts the
-- caller may see: receipts_seen_by).
create function public.get_conversation(p_conversation_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me public.participants := public.require_participant(p_conversation_id, public.caller_id());
begin
  return jsonb_build_object(
    'conversation', public.receipts_seen_by(public.conversation_json(p_conversation_id), v_me.user_id),
    'me', public.me_json(v_me)
  );
end;
$$;
revoke execute on function public.get_conversation(uuid) from public, anon;
grant execute on function public.get_conversation(uuid) to authenticated, service_role;

-- Counts about one conversation, for its participants.
create function public.conversation_stats(p_conversation_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform public.require_participant(p_conversation_id, public.caller_id());

  return (
    select jsonb_build_object(
      'conversation_id', c.id,
      'kind', c.kind,
      'name', c.name,
      'message_count', (
        select count(*) from public.messages m where m.conversation_id = c.id and m.deleted_at is null
      ),
      'participant_count', (
        select count(*) from public.participants p where p.conversation_id = c.id and p.left_at is null
      ),
      -- Of the members whose presence the caller may see (the caller too).
      'online_count', (
        select count(*)
        from public.participants p
        where p.conversation_id = c.id
          and p.left_at is null
          and public.is_online(p.user_id)
          and public.presence_visible(public.caller_id(), p.user_id)
      ),
      'last_message', (
        select public.message_json(m) from public.messages m where m.conversation_id = c.id order by m.seq desc limit 1
      ),
      'last_activity_at', coalesce(e.created_at, c.created_at),
      'last_seq', c.last_seq
    )
    from public.conversations c
    left join public.conversation_events e on e.conversation_id = c.id and e.seq = c.last_seq
    where c.id = p_conversation_id
  );
end;
$$;
revoke execute on function public.conversation_stats(uuid) from public, anon;
grant execute on function public.conversation_stats(uuid) to authenticated, service_role;

-- How many live connections each current participant has: enough to show
-- who is around, never the connection ids (those address someone's devices).
-- Being connected is presence, so only members whose presence the caller may
-- see are counted (presence_visible).
create function public.conversation_connections(p_conversation_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_users jsonb;
begin
  perform public.require_participant(p_conversation_id, public.caller_id());

  select coalesce(jsonb_agg(jsonb_build_object('user_id', u.user_id, 'connections', u.connections) order by u.user_id), '[]'::jsonb)
  into v_users
  from (
    select p.user_id, count(*)::int as connections
    from public.participants p
    join public.connections c on c.user_id = p.user_id
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and public.connection_is_live(c.token_exp)
      and public.presence_visible(public.caller_id(), p.user_id)
    group by p.user_id
  ) u;

  return jsonb_build_object(
    'conversation_id', p_conversation_id,
    'users', v_users,
    'total_connections', (select coalesce(sum((u ->> 'connections')::int), 0) from jsonb_array_elements(v_users) as u)
  );
end;
$$;
revoke execute on function public.conversation_connections(uuid) from public, anon;
grant execute on function public.conversation_connections(uuid) to authenticated, service_role;
