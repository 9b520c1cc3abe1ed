-- Read state: each participant's read watermark (participants.last_read_seq),
-- unread counts, and read receipts. A receipt is not durable: the watermark
-- itself is the state, the read event only tells the devices now.

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

-- Moves the caller's read watermark forward (never back) to p_seq, or to the
-- latest event. A read receipt is not durable: the watermark itself is the
-- state (participants' last_read_seq), the read event only tells the devices
-- now. In a room only the reader's own devices hear of it: a room's members
-- did not sign up for each other's receipts. Elsewhere the members hear of
-- it, but for those with a block between them and the reader, either way.
create function public.mark_read(p_user_id uuid, p_conversation_id uuid, p_seq bigint default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me public.participants;
  v_conversation public.conversations;
  v_target bigint;
  v_watermark bigint;
  v_changed boolean;
  v_read_at timestamptz := now();
  v_deliveries jsonb := '[]'::jsonb;
begin
  perform public.require_participant(p_conversation_id, p_user_id);
  if p_seq < 0 then
    perform public.api_error('invalid_argument', 'seq must not be negative.');
  end if;

  select c.* into v_conversation from public.conversations c where c.id = p_conversation_id;
  v_target := least(coalesce(p_seq, v_conversation.last_seq), v_conversation.last_seq);

  -- Only the reader's own row is locked: concurrent marks of one reader are
  -- serialized, so the watermark cannot go back.
  select p.* into v_me
  from public.participants p
  where p.conversation_id = p_conversation_id
    and p.user_id = p_user_id
    and p.left_at is null
  for update;
  if not found then
    perform public.api_error('not_a_participant', 'You are not a participant of this conversation.');
  end if;

  v_watermark := greatest(v_me.last_read_seq, v_target);
  v_changed := v_watermark > v_me.last_read_seq;

  if v_changed then
    update public.participants p
       set last_read_seq = v_watermark
     where p.conversation_id = p_conversation_id
       and p.user_id = p_user_id;

    v_deliveries := jsonb_build_array(public.delivery(
      public.event_envelope('read', p_conversation_id, null,
        jsonb_build_object('user_id', p_user_id, 'last_read_seq', v_watermark, 'read_at', v_read_at)),
      case when v_conversation.kind = 'room'
        then public.user_recipients(array[p_user_id])
        else public.without_blocked(public.live_recipients(p_conversation_id, null), p_user_id)
      end
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
