-- The SQL helpers every send runs, in PL/pgSQL: a SQL function's query is
-- parsed and planned again in every transaction that calls it, a PL/pgSQL
-- function's plan is kept for the session.

-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
create or replace function public.user_recipients(p_user_ids uuid[])
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(
      jsonb_agg(
        jsonb_build_object('user_id', c.user_id, 'connection_id', c.connection_id)
        order by c.user_id, c.connection_id
      ),
      '[]'::jsonb
    )
    from public.connections c
    where c.user_id = any (coalesce(p_user_ids, '{}'::uuid[]))
      and public.connection_is_live(c.token_exp)
  );
end;
$$;

-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
create or replace function public.live_recipients(p_conversation_id uuid, p_except_user_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
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

-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
create or replace function public.blocked_with(p_user_id uuid)
returns setof uuid
language plpgsql
stable
set search_path = ''
as $$
begin
  return query
    select b.blocked_id from public.blocks b where b.blocker_id = p_user_id
    union
    select b.blocker_id from public.blocks b where b.blocked_id = p_user_id;
end;
$$;

-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
create or replace function public.notification_request(p_conversation_id uuid, p_message_id uuid, p_sender uuid)
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
      and not exists (
        select 1
        from public.connections c
        where c.user_id = p.user_id
          and public.connection_is_live(c.token_exp)
      )
      and p.user_id not in (select public.blocked_with(p_sender))
    having count(*) > 0
  );
end;
$$;
