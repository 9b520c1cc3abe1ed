-- Push notifications: the Web Push subscriptions of users' browsers (RFC
-- 8030), and who is told of a new message while offline.
--
-- send_message decides, in its own transaction, who is to be told
-- (notification_request: participants but the sender whom the message does
-- not reach live, who have not muted the conversation and have no block with
-- the sender) and returns that list with its result; the sending function
-- hands it to the notification function, which reads what to say and where to
-- say it (notification_targets) and forgets the subscriptions the push service
-- no longer knows (remove_push_subscriptions).
--
-- A user reads and deletes only their own subscriptions: an endpoint and its
-- keys are what lets anyone push to that browser. Writes go through
-- save_push_subscription, which validates them.

create table public.push_subscriptions (
  -- The push service's URL for one browser; unique to it, so a browser
  -- signed in as someone else moves to them (save_push_subscription).
  endpoint text primary key
    constraint push_subscriptions_endpoint_length check (octet_length(endpoint) between 1 and 2048),
  user_id uuid not null references public.profiles (id) on delete cascade,
  -- The browser's ECDH public key (an uncompressed P-256 point, 65 bytes) and
  -- its authentication secret (16 bytes), base64url without padding (RFC 8291).
  p256dh text not null
    constraint push_subscriptions_p256dh_format check (p256dh ~ '^[A-Za-z0-9_-]{87}$'),
  auth text not null
    constraint push_subscriptions_auth_format check (auth ~ '^[A-Za-z0-9_-]{22}$'),
  created_at timestamptz not null default now()
);

comment on table public.push_subscriptions is
  'Web Push subscriptions; each user reads and deletes their own. Written by save_push_subscription.';

create index push_subscriptions_user_id_idx on public.push_subscriptions (user_id, created_at);

alter table public.push_subscriptions enable row level security;
revoke all on table public.push_subscriptions from anon, authenticated;
grant select, delete on table public.push_subscriptions to authenticated;
grant all on table public.push_subscriptions to service_role;

create policy "push subscriptions are readable by their user"
  on public.push_subscriptions
  for select
  to authenticated
  using (user_id = (select public.caller_id()));

create policy "push subscriptions are deletable by their user"
  on public.push_subscriptions
  for delete
  to authenticated
  using (user_id = (select public.caller_id()));

-- ===========================================================================
-- Helpers
-- ===========================================================================

-- The bytes of base64url text (RFC 4648 §5, padding optional), or null when
-- it is not base64url.
create function public.base64url_bytes(p_text text)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select case
    when p_text ~ '^[A-Za-z0-9_-]*={0,2}$' and char_length(rtrim(p_text, '=')) % 4 <> 1
      then decode(rpad(translate(rtrim(p_text, '='), '-_', '+/'),
                       (char_length(rtrim(p_text, '=')) + 3) / 4 * 4, '='), 'base64')
  end
$$;
revoke execute on function public.base64url_bytes(text) from public, anon, authenticated, service_role;

-- Whether a push endpoint may be stored: an https URL with a host, of at most
-- 2048 bytes, in printable ASCII (a URL as a browser serialises it: a host in
-- its xn-- form, the rest percent-encoded; the notification function's URL
-- parser knows no other form of a host), so without spaces or control
-- characters. A plain-http loopback URL only where the database allows it
-- (app.allow_loopback_push_endpoints = 'on', which only the local stack sets:
-- its push service stand-in has no certificate); elsewhere it would make the
-- notification function post to its own machine.
create function public.valid_push_endpoint(p_endpoint text)
returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(
    octet_length(p_endpoint) <= 2048
    and p_endpoint ~ '^[!-~]*$'
    and (
      p_endpoint ~ '^https://[^/?#\u0001-\u0020\u007f-\u009f]+[^\u0001-\u0020\u007f-\u009f]*$'
      or (current_setting('app.allow_loopback_push_endpoints', true) = 'on'
          and p_endpoint ~ '^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/[^\u0001-\u0020\u007f-\u009f]*)?$')
    ),
    false)
$$;
revoke execute on function public.valid_push_endpoint(text) from public, anon, authenticated, service_role;

-- The users to tell of a message in a conversation, decided with the message
-- in send_message's transaction: current participants other than the sender
-- whom its message.created does not reach live (p_reached: the Recipient JSON
-- of that delivery, the live connections of the members), who have not muted
-- the conversation and have no block with the sender either way. Null when
-- nobody, else {conversation_id, message_id, user_ids}: what the sending
-- function hands to the notification function.
-- Set-based (the delivery's recipients and the sender's blocks, each read
-- once) rather than is_online and blocked_between for each member: in a room
-- of a thousand those were a thousand queries each on every send. The
-- recipients are the send's own, so the members' connections are not looked
-- up twice (in such a room, a thousand index probes).
-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
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

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- Saves the caller's browser's PushSubscription (endpoint, keys.p256dh,
-- keys.auth). Saving it again updates the keys (created = false); an
-- endpoint saved by another user moves to the caller: the browser is now
-- signed in as them. A user keeps at most 10 subscriptions: saving an 11th
-- forgets the one saved first (a browser that no longer uses one rarely says
-- so, and the push service's 404 or 410 removes it only when a push is tried).
create function public.save_push_subscription(p_endpoint text, p_p256dh text, p_auth text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  c_max constant int := 10;
  v_me uuid := public.require_caller();
  v_p256dh bytea := public.base64url_bytes(p_p256dh);
  v_auth bytea := public.base64url_bytes(p_auth);
  v_row public.push_subscriptions;
  v_created boolean;
begin
  if not public.valid_push_endpoint(p_endpoint) then
    perform public.api_error('invalid_push_subscription',
      'endpoint must be an https URL of at most 2048 bytes.');
  end if;
  if v_p256dh is null or octet_length(v_p256dh) <> 65 or get_byte(v_p256dh, 0) <> 4 then
    perform public.api_error('invalid_push_subscription',
      'keys.p256dh must be an uncompressed P-256 public key (65 bytes), base64url.');
  end if;
  if v_auth is null or octet_length(v_auth) <> 16 then
    perform public.api_error('invalid_push_subscription',
      'keys.auth must be a 16-byte secret, base64url.');
  end if;

  select s.* into v_row from public.push_subscriptions s where s.endpoint = p_endpoint for update;
  v_created := not found or v_row.user_id <> v_me;

  insert into public.push_subscriptions as s (endpoint, user_id, p256dh, auth)
  values (p_endpoint, v_me, rtrim(p_p256dh, '='), rtrim(p_auth, '='))
  on conflict (endpoint) do update
     set user_id = excluded.user_id,
         p256dh = excluded.p256dh,
         auth = excluded.auth,
         created_at = case when s.user_id = excluded.user_id then s.created_at else now() end
  returning s.* into v_row;

  delete from public.push_subscriptions s
   where s.user_id = v_me
     and s.endpoint in (
       select o.endpoint
       from public.push_subscriptions o
       where o.user_id = v_me
       order by o.created_at desc, o.endpoint
       offset c_max
     );

  return jsonb_build_object(
    'subscription', jsonb_build_object('endpoint', v_row.endpoint, 'created_at', v_row.created_at),
    'created', v_created
  );
end;
$$;
revoke execute on function public.save_push_subscription(text, text, text) from public, anon;
grant execute on function public.save_push_subscription(text, text, text) to authenticated, service_role;

-- Forgets one of the caller's subscriptions (the browser unsubscribed):
-- removed says whether there was one. Another user's endpoint is left alone
-- and answers like an unknown one.
create function public.delete_push_subscription(p_endpoint text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_removed int;
begin
  if p_endpoint is null then
    perform public.api_error('invalid_push_subscription', 'endpoint is required.');
  end if;
  delete from public.push_subscriptions s
   where s.endpoint = p_endpoint
     and s.user_id = v_me;
  get diagnostics v_removed = row_count;
  return jsonb_build_object('removed', v_removed > 0);
end;
$$;
revoke execute on function public.delete_push_subscription(text) from public, anon;
grant execute on function public.delete_push_subscription(text) to authenticated, service_role;

-- ===========================================================================
-- Internal RPCs (service_role only)
-- ===========================================================================

-- What to tell the users send_message listed of one of its messages, and the
-- subscriptions of their browsers. The notification names the conversation
-- and the sender; its body follows p_preview: 'full' (the whole text),
-- 'preview' (its first 100 characters, … when cut) or 'none' (no text: only
-- that a message came). Null when the message is gone or deleted since: there
-- is nothing left to tell.
create function public.notification_targets(p_message_id uuid, p_user_ids uuid[], p_preview text default 'preview')
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  c_preview_chars constant int := 100;
  v_message public.messages;
  v_body text;
begin
  if p_preview is null or p_preview not in ('full', 'preview', 'none') then
    perform public.api_error('invalid_argument', 'p_preview must be full, preview or none.');
  end if;
  select m.* into v_message from public.messages m where m.id = p_message_id;
  if not found or v_message.deleted_at is not null then
    return jsonb_build_object('notification', null, 'subscriptions', '[]'::jsonb);
  end if;

  v_body := case p_preview
    when 'full' then v_message.body
    when 'preview' then case
      when char_length(v_message.body) > c_preview_chars
        then rtrim(left(v_message.body, c_preview_chars - 1)) || '…'
      else v_message.body
    end
  end;

  return jsonb_build_object(
    'notification', (
      select jsonb_build_object(
        'type', 'message.created',
        'conversation', jsonb_build_object('id', c.id, 'kind', c.kind, 'name', c.name),
        'message', jsonb_build_object(
          'id', v_message.id,
          'seq', v_message.seq,
          'kind', v_message.kind,
          'body', v_body,
          'created_at', v_message.created_at
        ),
        'sender', case when u.id is not null then public.public_profile_json(u) end
      )
      from public.conversations c
      left join public.profiles u on u.id = v_message.sender_id
      where c.id = v_message.conversation_id
    ),
    'subscriptions', coalesce((
      select jsonb_agg(
        jsonb_build_object('user_id', s.user_id, 'endpoint', s.endpoint, 'p256dh', s.p256dh, 'auth', s.auth)
        order by s.user_id, s.endpoint
      )
      from public.push_subscriptions s
      where s.user_id = any (coalesce(p_user_ids, '{}'::uuid[]))
    ), '[]'::jsonb)
  );
end;
$$;
revoke execute on function public.notification_targets(uuid, uuid[], text) from public, anon, authenticated;
grant execute on function public.notification_targets(uuid, uuid[], text) to service_role;

-- Forgets subscriptions the push service answered 404 or 410 for: the browser
-- unsubscribed or the subscription expired.
create function public.remove_push_subscriptions(p_endpoints text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_removed int;
begin
  delete from public.push_subscriptions s
   where s.endpoint = any (coalesce(p_endpoints, '{}'::text[]));
  get diagnostics v_removed = row_count;
  return jsonb_build_object('removed', v_removed);
end;
$$;
revoke execute on function public.remove_push_subscriptions(text[]) from public, anon, authenticated;
grant execute on function public.remove_push_subscriptions(text[]) to service_role;
