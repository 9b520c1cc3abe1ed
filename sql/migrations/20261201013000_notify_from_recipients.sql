-- notification_request takes the send's delivery recipients (p_reached)
-- and tells the members it does not reach live, rather than looking every
-- member's connections up again: in a room of a thousand, a thousand index
-- probes per send. send_message asks live_recipients once, for both.

create function public.notification_request(p_conversation_id uuid, p_message_id uuid, p_sender uuid, p_reached jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object(
      'conversation_id', p_conversation_id,
      'message_id', p_message_id,
      'user_ids', jsonb_agg(p.user_id order by p.user_id)
    )
    from public.participants p
    where p.conversation_id = p_conversation_id
      and p.left_at is null
      and p.user_id <> p_sender
      and not p.muted
      and p.user_id not in (
        select (r.recipient ->> 'user_id')::uuid
        from jsonb_array_elements(coalesce(p_reached, '[]'::jsonb)) as r(recipient)
      )
      and p.user_id not in (select public.blocked_with(p_sender))
    having count(*) > 0
  );
end;
$$;
revoke execute on function public.notification_request(uuid, uuid, uuid, jsonb) from public, anon, authenticated, service_role;

create or replace function public.send_message(
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
  v_recipients := public.live_recipients(p_conversation_id, null);
  return jsonb_build_object(
    'result', jsonb_build_object('message', v_json, 'duplicate', v_duplicate),
    'deliveries', jsonb_build_array(public.delivery(
      public.event_envelope('message.created', p_conversation_id, v_message.seq, v_json),
      v_recipients
    )),
    'notify', case when not v_duplicate
      then public.notification_request(p_conversation_id, v_message.id, p_sender, v_recipients) end
  );
end;
$$;

drop function public.notification_request(uuid, uuid, uuid);
