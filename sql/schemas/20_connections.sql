-- Connections: the WebSocket registry. Internal: only service_role and the
-- SECURITY DEFINER functions touch it; users never see connection ids (they
-- address someone's devices). Who goes online and offline when a connection
-- comes or goes is presence (70_presence.sql); rows whose $disconnect never
-- came are found by the sweep (75_sweep.sql).

create table public.connections (
  connection_id text primary key
    constraint connections_connection_id_length check (char_length(connection_id) between 1 and 128),
  user_id uuid not null references public.profiles (id) on delete cascade,
  connected_at timestamptz not null default now(),
  -- The last proof that the socket is open: its $connect, a ping, or the
  -- sweep's GET @connections answered 200.
  last_seen_at timestamptz not null default now(),
  -- Expiry of the token the socket connected with; past it the socket is
  -- no longer live and gets nothing more.
  token_exp timestamptz
);

create index connections_user_id_idx on public.connections (user_id);

-- Deliberately no policy and no grant for users.
alter table public.connections enable row level security;
revoke all on table public.connections from anon, authenticated;
grant all on table public.connections to service_role;

-- Whether a registered connection may still receive events: the token it
-- connected with has not expired. A row whose $disconnect never came counts
-- until a push to it is answered 410 Gone (remove_connections) or the sweep
-- finds it gone (sweep_connections).
-- Asked for every connection of every member on each send, so it is written
-- to be inlined into the query that asks: no SET clause (one would make each
-- row a function call of its own), and nothing in its body that a search
-- path could change (pg_catalog, named).
create function public.connection_is_live(p_token_exp timestamptz)
returns boolean
language sql
stable
as $$
  select p_token_exp is null or p_token_exp operator(pg_catalog.>) pg_catalog.now()
$$;
revoke execute on function public.connection_is_live(timestamptz) from public, anon, authenticated, service_role;

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

-- Live connections of the given users, as Recipient JSON (for events meant
-- for particular users: the one who left, the ones just added, a reader).
-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
-- Each row goes into the array as it is (a row's JSON has its columns' names
-- as keys) rather than through an object built for it first: the same JSON,
-- and about a quarter less time in a room of a thousand.
create function public.user_recipients(p_user_ids uuid[])
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(r order by r.user_id, r.connection_id), '[]'::jsonb)
    from (
      select c.user_id, c.connection_id
      from public.connections c
      where c.user_id = any (coalesce(p_user_ids, '{}'::uuid[]))
        and public.connection_is_live(c.token_exp)
    ) r
  );
end;
$$;
revoke execute on function public.user_recipients(uuid[]) from public, anon, authenticated, service_role;

-- Whether a user has a live connection.
create function public.is_online(p_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select exists (
      select 1
      from public.connections c
      where c.user_id = p_user_id
        and public.connection_is_live(c.token_exp)
    )
  );
end;
$$;
revoke execute on function public.is_online(uuid) from public, anon, authenticated, service_role;

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
revoke execute on function public.touch_connection(text) from public, anon, authenticated;
grant execute on function public.touch_connection(text) to service_role;
