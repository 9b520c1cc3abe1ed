-- Connections whose $disconnect never came are swept, and every removal of
-- a user's last connection tells the others: presence offline, and typing
-- stopped where the user was typing (which send_typing now records).

-- Whether a registered connection is past its $connect, so that API Gateway
-- answering 410 for it means it is gone. A push to (or a GET of) a connection
-- whose $connect has not returned yet is answered 410 too, although it is
-- already registered (its $connect registers before it returns); forgetting
-- it would leave a socket about to open with nothing until it reconnected.
-- API Gateway's integration timeout is 29 seconds, so a connection registered
-- longer ago than 30 seconds has finished its $connect. A young one that
-- really went away is removed by its $disconnect, a later 410 or a later sweep.
create function public.connection_is_settled(p_connected_at timestamptz)
returns boolean
language sql
stable
set search_path = ''
as $$
  select p_connected_at < now() - interval '30 seconds'
$$;
revoke execute on function public.connection_is_settled(timestamptz) from public, anon, authenticated, service_role;

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
create or replace function public.send_typing(
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

-- What the others are told when p_user_id's last live connection has gone,
-- however it went ($disconnect, a 410, the sweep): presence offline, with the
-- user's last seen time, to the contacts; and typing stopped in every
-- conversation where the user was still typing (typing_indicators, whose
-- rows of the user are forgotten). The caller holds the user's profile lock.
create function public.went_offline(p_user_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_deliveries jsonb;
begin
  v_deliveries := jsonb_build_array(public.delivery(
    public.event_envelope('presence', null, null, jsonb_build_object(
      'user_id', p_user_id,
      'online', false,
      'last_seen_at', (select p.last_seen_at from public.profiles p where p.id = p_user_id))),
    public.contact_recipients(p_user_id)
  ));

  with stopped as (
    delete from public.typing_indicators t
     where t.user_id = p_user_id
    returning t.conversation_id, t.expires_at
  )
  select v_deliveries || coalesce(jsonb_agg(public.delivery(
      public.event_envelope('typing', s.conversation_id, null, jsonb_build_object(
        'user_id', p_user_id, 'is_typing', false, 'expires_at', now())),
      public.without_blocked(public.live_recipients(s.conversation_id, p_user_id), p_user_id)
    ) order by s.conversation_id), '[]'::jsonb)
    into v_deliveries
  from stopped s
  where s.expires_at > now();

  return v_deliveries;
end;
$$;
revoke execute on function public.went_offline(uuid) from public, anon, authenticated, service_role;

-- Forgets the given connections (API Gateway answered 410 for them, or the
-- sweep found them gone): those past their $connect only
-- (connection_is_settled). A user was last seen when one of them last was
-- (connect, ping, a sweep that found it open), if that is later than what
-- the profile says. Every user whose last live connection goes with them goes
-- offline (went_offline), exactly as by $disconnect, told to the connections
-- that remain; one of several connections going tells nobody. The users'
-- profiles are locked first, in id order, then their connections, as
-- register_connection does. Returns {removed, deliveries}.
create function public.forget_connections(p_connection_ids text[])
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_ids text[] := coalesce(p_connection_ids, '{}'::text[]);
  v_users uuid[];
  v_user_id uuid;
  v_removed int;
  v_deliveries jsonb := '[]'::jsonb;
begin
  perform 1
  from public.profiles p
  where p.id in (
      select c.user_id
      from public.connections c
      where c.connection_id = any (v_ids)
        and public.connection_is_settled(c.connected_at)
    )
  order by p.id
  for update of p;

  with removed as (
    delete from public.connections c
     where c.connection_id = any (v_ids)
       and public.connection_is_settled(c.connected_at)
    returning c.user_id, c.last_seen_at
  ),
  users as (
    select r.user_id, count(*) as removed, max(r.last_seen_at) as last_seen_at
    from removed r
    group by r.user_id
  ),
  seen as (
    update public.profiles p
       set last_seen_at = greatest(p.last_seen_at, u.last_seen_at)
      from users u
     where p.id = u.user_id
  )
  select coalesce(sum(u.removed), 0), coalesce(array_agg(u.user_id order by u.user_id), '{}'::uuid[])
    into v_removed, v_users
  from users u;

  foreach v_user_id in array v_users loop
    if not public.is_online(v_user_id) then
      v_deliveries := v_deliveries || public.went_offline(v_user_id);
    end if;
  end loop;
  return jsonb_build_object('removed', v_removed, 'deliveries', v_deliveries);
end;
$$;
revoke execute on function public.forget_connections(text[]) from public, anon, authenticated, service_role;

-- $disconnect: forgets the connection and marks the user seen.
-- last_connection: no other live connection remains; then the user goes
-- offline (went_offline: presence to the contacts, typing stopped).
-- An unknown id is not an error: $disconnect may run twice.
create or replace function public.unregister_connection(p_connection_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_last boolean;
  v_seen timestamptz := now();
  v_deliveries jsonb := '[]'::jsonb;
begin
  select c.user_id into v_user_id
  from public.connections c
  where c.connection_id = p_connection_id;
  if v_user_id is null then
    return jsonb_build_object('user_id', null, 'last_connection', false, 'deliveries', v_deliveries);
  end if;

  -- Same lock order as register_connection: profile, then connection.
  update public.profiles
     set last_seen_at = v_seen
   where id = v_user_id;

  delete from public.connections c
   where c.connection_id = p_connection_id
     and c.user_id = v_user_id;
  if not found then
    -- A concurrent $disconnect of the same connection got there first.
    return jsonb_build_object('user_id', null, 'last_connection', false, 'deliveries', v_deliveries);
  end if;

  v_last := not public.is_online(v_user_id);
  if v_last then
    v_deliveries := public.went_offline(v_user_id);
  end if;

  return jsonb_build_object('user_id', v_user_id, 'last_connection', v_last, 'deliveries', v_deliveries);
end;
$$;
revoke execute on function public.unregister_connection(text) from public, anon, authenticated;
grant execute on function public.unregister_connection(text) to service_role;

-- Forgets connections a push found gone: API Gateway answered 410 Gone
-- (forget_connections: only those past their $connect; presence offline and
-- typing stopped for users whose last connection they were).
create or replace function public.remove_connections(p_connection_ids text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_forgotten jsonb := public.forget_connections(p_connection_ids);
begin
  return jsonb_build_object(
    'result', jsonb_build_object('removed', v_forgotten -> 'removed'),
    'deliveries', v_forgotten -> 'deliveries'
  );
end;
$$;
revoke execute on function public.remove_connections(text[]) from public, anon, authenticated;
grant execute on function public.remove_connections(text[]) to service_role;

-- The rows the sweep looks at, at most p_limit of each kind, the longest in
-- doubt first, all past their $connect (connection_is_settled):
--   expired: the token the socket connected with has expired. The socket is
--     not live (it gets nothing and counts for nothing), but stays open until
--     its next frame is answered token_expired; the sweep closes it.
--   stale: live, but not seen (connect, ping, an earlier sweep) for
--     p_stale_after_seconds. Clients ping every few minutes, so a longer
--     silence puts the socket in doubt: the sweep asks API Gateway.
create function public.sweep_candidates(p_stale_after_seconds int, p_limit int default 1000)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if p_stale_after_seconds is null or p_stale_after_seconds < 1 then
    perform public.api_error('invalid_argument', 'stale_after_seconds must be at least 1.');
  end if;
  if p_limit is null or p_limit not between 1 and 10000 then
    perform public.api_error('invalid_argument', 'limit must be between 1 and 10000.');
  end if;

  return jsonb_build_object(
    'expired', (
      select coalesce(jsonb_agg(e.connection_id order by e.token_exp, e.connection_id), '[]'::jsonb)
      from (
        select c.connection_id, c.token_exp
        from public.connections c
        where not public.connection_is_live(c.token_exp)
          and public.connection_is_settled(c.connected_at)
        order by c.token_exp, c.connection_id
        limit p_limit
      ) e
    ),
    'stale', (
      select coalesce(jsonb_agg(s.connection_id order by s.last_seen_at, s.connection_id), '[]'::jsonb)
      from (
        select c.connection_id, c.last_seen_at
        from public.connections c
        where public.connection_is_live(c.token_exp)
          and public.connection_is_settled(c.connected_at)
          and c.last_seen_at < now() - make_interval(secs => p_stale_after_seconds)
        order by c.last_seen_at, c.connection_id
        limit p_limit
      ) s
    )
  );
end;
$$;
revoke execute on function public.sweep_candidates(int, int) from public, anon, authenticated;
grant execute on function public.sweep_candidates(int, int) to service_role;

-- What the sweep found: p_gone are connections to forget (expired ones it
-- closed, stale ones API Gateway answered 410 for), p_alive stale ones API
-- Gateway still knows (200), whose last_seen_at moves to now so they are not
-- asked about again before another silence as long. Gone users' last
-- connections send presence offline and typing stopped (forget_connections);
-- typing indicators that expired on their own are pruned. Returns
-- {result: {removed, refreshed}, deliveries}.
create function public.sweep_connections(p_gone text[], p_alive text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- Forgetting first: it locks profiles before connections, as every other
  -- writer of connections does; the refresh below then locks connection
  -- rows only.
  v_forgotten jsonb := public.forget_connections(p_gone);
  v_refreshed int;
begin
  update public.connections c
     set last_seen_at = now()
   where c.connection_id = any (coalesce(p_alive, '{}'::text[]));
  get diagnostics v_refreshed = row_count;

  delete from public.typing_indicators t
   where t.expires_at < now();

  return jsonb_build_object(
    'result', jsonb_build_object('removed', v_forgotten -> 'removed', 'refreshed', v_refreshed),
    'deliveries', v_forgotten -> 'deliveries'
  );
end;
$$;
revoke execute on function public.sweep_connections(text[], text[]) from public, anon, authenticated;
grant execute on function public.sweep_connections(text[], text[]) to service_role;
