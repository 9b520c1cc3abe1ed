-- Health: counts for GET /v1/health.

-- For GET /v1/health; callable without signing in, reveals only counts.
create function public.health_stats()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'live_connections', (
      select count(*)
      from public.connections c
      where public.connection_is_live(c.token_exp)
    ),
    'users_online', (
      select count(distinct c.user_id)
      from public.connections c
      where public.connection_is_live(c.token_exp)
    ),
    'active_conversations', (
      select count(distinct e.conversation_id)
      from public.conversation_events e
      where e.created_at > now() - interval '24 hours'
    )
  )
$$;
revoke execute on function public.health_stats() from public;
grant execute on function public.health_stats() to anon, authenticated, service_role;
