-- Read state: each participant's read and delivered watermarks
-- (participants.last_read_seq, last_delivered_seq), unread counts, and read
-- and delivery receipts. A receipt is not durable: the watermark itself is
-- the state, the read and delivered events only tell the devices now.

-- Unread messages of a participant: others' messages after the watermark that
-- still say something (a deleted message is nothing left to read).
create function public.unread_count(p_conversation_id uuid, p_user_id uuid, p_last_read_seq bigint)
returns bigint
language sql
stable
set search_path = ''
as $$
  select count(*)
  from public.messages m
  where m.conversation_id = p_conversation_id
    and m.seq > coalesce(p_last_read_seq, 0)
    and m.sender_id is distinct from p_user_id
    and m.deleted_at is null
$$;
revoke execute on function public.unread_count(uuid, uuid, bigint) from public, anon, authenticated, service_role;

-- The "me" settings of a participant: private to that participant.
create function public.me_json(p_participant public.participants)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'role', p_participant.role,
    'joined_at', p_participant.joined_at,
    'archived', p_participant.archived,
    'muted', p_participant.muted,
    'last_read_seq', p_participant.last_read_seq,
    'unread_count', public.unread_count(p_participant.conversation_id, p_participant.user_id, p_participant.last_read_seq)
  )
$$;
revoke execute on function public.me_json(public.participants) from public, anon, authenticated, service_role;

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
language plpgsql
stable
set search_path = ''
as $$
begin
  return case
    when p_kind = 'room' then public.user_recipients(array[p_user_id])
    when p_audience is null then public.without_blocked(public.live_recipients(p_conversation_id, null), p_user_id)
    else public.without_blocked(public.user_recipients(p_audience), p_user_id)
  end;
end;
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
create function public.mark_read(p_user_id uuid, p_conversation_id uuid, p_seq bigint default null)
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
revoke execute on function public.mark_read(uuid, uuid, bigint) from public, anon, authenticated;
grant execute on function public.mark_read(uuid, uuid, bigint) to service_role;

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

-- The caller's unread counts, for a badge: the conversations with something
-- unread and the total (muted ones included; each says whether it is muted).
create function public.unread_counts()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_conversations jsonb;
begin
  select coalesce(jsonb_agg(
           jsonb_build_object('conversation_id', u.conversation_id, 'unread_count', u.unread_count, 'muted', u.muted)
           order by u.conversation_id
         ), '[]'::jsonb)
  into v_conversations
  from (
    select p.conversation_id, p.muted, public.unread_count(p.conversation_id, p.user_id, p.last_read_seq) as unread_count
    from public.participants p
    where p.user_id = v_me
      and p.left_at is null
  ) u
  where u.unread_count > 0;

  return jsonb_build_object(
    'total', (select coalesce(sum((c ->> 'unread_count')::bigint), 0) from jsonb_array_elements(v_conversations) as c),
    'conversations', v_conversations
  );
end;
$$;
revoke execute on function public.unread_counts() from public, anon;
grant execute on function public.unread_counts() to authenticated, service_role;
