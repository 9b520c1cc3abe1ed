-- Delivery receipts: a delivered watermark per member beside the read one
-- (participants.last_delivered_seq), mark_delivered, mark_read raising it,
-- and both receipts in the Conversation JSON, hidden across a block in what
-- get_conversation and update_conversation answer.

alter table public.participants
  add column last_delivered_seq bigint not null default 0
    constraint participants_last_delivered_seq_nonnegative check (last_delivered_seq >= 0);

-- What was read reached a device.
update public.participants set last_delivered_seq = last_read_seq where last_read_seq > 0;

-- The Conversation JSON shape, with its current participants; each carries
-- last_read_seq and last_delivered_seq, which is how clients show read and
-- delivery receipts (null in a room: a room's members did not sign up for
-- each other's receipts, and mark_read and mark_delivered tell only the
-- member; a member's own read position is in me_json), and the public part
-- of the participant's profile (never presence: that has its own rule), so a
-- chat screen can name everyone it shows. Former members are not listed.
create or replace function public.conversation_json(p_conversation_id uuid)
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

-- Locks a member's watermarks for a mark up to p_seq (null: the latest) and
-- says where the mark lands: never past the conversation's latest seq. Only
-- the member's own row is locked: concurrent marks of one member are
-- serialized, so neither watermark can go back.
create function public.lock_own_watermarks(
  p_user_id uuid,
  p_conversation_id uuid,
  p_seq bigint,
  out o_kind text,
  out o_target bigint,
  out o_last_read_seq bigint,
  out o_last_delivered_seq bigint
)
language plpgsql
set search_path = ''
as $$
declare
  v_conversation public.conversations;
begin
  perform public.require_participant(p_conversation_id, p_user_id);
  if p_seq < 0 then
    perform public.api_error('invalid_argument', 'seq must not be negative.');
  end if;

  select c.* into v_conversation from public.conversations c where c.id = p_conversation_id;
  o_kind := v_conversation.kind;
  o_target := least(coalesce(p_seq, v_conversation.last_seq), v_conversation.last_seq);

  select p.last_read_seq, p.last_delivered_seq into o_last_read_seq, o_last_delivered_seq
  from public.participants p
  where p.conversation_id = p_conversation_id
    and p.user_id = p_user_id
    and p.left_at is null
  for update;
  if not found then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;
end;
$$;
revoke execute on function public.lock_own_watermarks(uuid, uuid, bigint) from public, anon, authenticated, service_role;

-- Who hears of a member's receipt, read or delivered: in a room only the
-- member's own devices (a room's members did not sign up for each other's
-- receipts); elsewhere the live connections of p_audience (every current
-- member when null), but for the users with a block between them and the
-- member, either way.
create function public.receipt_recipients(p_kind text, p_conversation_id uuid, p_user_id uuid, p_audience uuid[])
returns jsonb
language sql
stable
set search_path = ''
as $$
  select case
    when p_kind = 'room' then public.user_recipients(array[p_user_id])
    when p_audience is null then public.without_blocked(public.live_recipients(p_conversation_id, null), p_user_id)
    else public.without_blocked(public.user_recipients(p_audience), p_user_id)
  end
$$;
revoke execute on function public.receipt_recipients(text, uuid, uuid, uuid[]) from public, anon, authenticated, service_role;

-- A Conversation JSON as p_viewer may see it: the receipts (last_read_seq,
-- last_delivered_seq) of the members with a block between them and the
-- viewer, either way, are null, as their read and delivered events do not
-- reach each other either. In a room they are null for everyone already.
create function public.receipts_seen_by(p_conversation jsonb, p_viewer uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select case
    when p_conversation ->> 'kind' = 'room' then p_conversation
    else p_conversation || jsonb_build_object('participants', coalesce((
      select jsonb_agg(
        case when public.blocked_between(p_viewer, (t.participant ->> 'user_id')::uuid)
          then t.participant || '{"last_read_seq": null, "last_delivered_seq": null}'::jsonb
          else t.participant
        end
        order by t.n)
      from jsonb_array_elements(p_conversation -> 'participants') with ordinality as t(participant, n)
    ), '[]'::jsonb))
  end
$$;
revoke execute on function public.receipts_seen_by(jsonb, uuid) from public, anon, authenticated, service_role;

-- Moves the caller's read watermark forward (never back) to p_seq, or to the
-- latest event; what is read reached a device too, so the delivered watermark
-- comes along (without an event of its own: `read` says as much). A read
-- receipt is not durable: the watermark itself is the state (participants'
-- last_read_seq), the read event only tells the devices now, and goes to the
-- members (receipt_recipients).
create or replace function public.mark_read(p_user_id uuid, p_conversation_id uuid, p_seq bigint default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_kind text;
  v_target bigint;
  v_read bigint;
  v_delivered bigint;
  v_watermark bigint;
  v_changed boolean;
  v_read_at timestamptz := now();
  v_deliveries jsonb := '[]'::jsonb;
begin
  select w.* into v_kind, v_target, v_read, v_delivered
  from public.lock_own_watermarks(p_user_id, p_conversation_id, p_seq) w;

  v_watermark := greatest(v_read, v_target);
  v_changed := v_watermark > v_read;

  if v_changed then
    update public.participants p
       set last_read_seq = v_watermark,
           last_delivered_seq = greatest(p.last_delivered_seq, v_watermark)
     where p.conversation_id = p_conversation_id
       and p.user_id = p_user_id;

    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('read', p_conversation_id, null,
        jsonb_build_object('user_id', p_user_id, 'last_read_seq', v_watermark, 'read_at', v_read_at)),
      public.receipt_recipients(v_kind, p_conversation_id, p_user_id, null)
    ));
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object(
      'conversation_id', p_conversation_id,
      'last_read_seq', v_watermark,
      'unread_count', public.unread_count(p_conversation_id, p_user_id, v_watermark),
      'changed', v_changed
    ),
    'deliveries', v_deliveries
  );
end;
$$;

-- Moves the caller's delivered watermark forward (never back) to p_seq: the
-- caller's device has every message up to there. A delivery receipt is not
-- durable either: `delivered` goes to the members whose messages it covers
-- now (the senders of the messages between the old watermark and the new
-- one) and to the caller's own devices, in a room only to the latter, never
-- across a block (receipt_recipients).
create function public.mark_delivered(p_user_id uuid, p_conversation_id uuid, p_seq bigint)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_kind text;
  v_target bigint;
  v_read bigint;
  v_delivered bigint;
  v_watermark bigint;
  v_changed boolean;
  v_senders uuid[];
  v_deliveries jsonb := '[]'::jsonb;
begin
  if p_seq is null then
    perform public.require_participant(p_conversation_id, p_user_id);
    perform public.api_error('invalid_argument', 'seq is required.');
  end if;
  select w.* into v_kind, v_target, v_read, v_delivered
  from public.lock_own_watermarks(p_user_id, p_conversation_id, p_seq) w;

  v_watermark := greatest(v_delivered, v_target);
  v_changed := v_watermark > v_delivered;

  if v_changed then
    update public.participants p
       set last_delivered_seq = v_watermark
     where p.conversation_id = p_conversation_id
       and p.user_id = p_user_id;

    if v_kind <> 'room' then
      v_senders := array(
        select o.user_id
        from public.participants o
        where o.conversation_id = p_conversation_id
          and o.left_at is null
          and o.user_id <> p_user_id
          and exists (
            select 1
            from public.messages m
            where m.conversation_id = p_conversation_id
              and m.seq > v_delivered
              and m.seq <= v_watermark
              and m.sender_id = o.user_id
          )
      );
    end if;

    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('delivered', p_conversation_id, null,
        jsonb_build_object('user_id', p_user_id, 'last_delivered_seq', v_watermark, 'delivered_at', now())),
      public.receipt_recipients(v_kind, p_conversation_id, p_user_id, array[p_user_id] || v_senders)
    ));
  end if;

  return jsonb_build_object(
    'result', jsonb_build_object(
      'conversation_id', p_conversation_id,
      'last_delivered_seq', v_watermark,
      'changed', v_changed
    ),
    'deliveries', v_deliveries
  );
end;
$$;
revoke execute on function public.mark_delivered(uuid, uuid, bigint) from public, anon, authenticated;
grant execute on function public.mark_delivered(uuid, uuid, bigint) to service_role;

-- One conversation and the caller's own settings in it (the receipts the
-- caller may see: receipts_seen_by).
create or replace function public.get_conversation(p_conversation_id uuid)
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

-- Renames a group or room (owner only, a durable event for everyone) and/or
-- changes the caller's own archived / muted settings (private, no event).
-- Every check comes before the first write. A rename is rate limited per user
-- (take_token's 'conversation' bucket); the settings are not.
create or replace function public.update_conversation(
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
