-- The connection sweep: API Gateway delivers $disconnect on a best-effort
-- basis, so a connection row can outlive its socket. Such a ghost keeps its
-- user online to every contact, counts in health and toward the connection
-- cap, and costs a push per event. The sweep-connections function runs on a
-- schedule: it asks sweep_candidates which rows are in doubt, closes or asks
-- API Gateway about each (DeleteConnection, GET @connections/{id}), and tells
-- sweep_connections what it found, which forgets the gone ones (presence
-- offline, typing stopped) and refreshes the ones still there.

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
