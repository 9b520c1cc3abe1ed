-- The presence, block and recipient helpers that connecting, disconnecting,
-- typing and receipts call, in PL/pgSQL rather than SQL, as the send path's
-- helpers already are (20261201020000_text_helpers_plpgsql.sql): with their
-- set clause a SQL function is never inlined, so its query was parsed and
-- planned again in every transaction that called it. contact_recipients, a
-- three-way join asked on a user's first connection and last disconnection,
-- was planned each time with presence_visible and are_contacts inside it:
-- about five sixths of a first connection's instructions in the database
-- (bench/sql/send_message_callgrind.sh: 10.0M -> 1.73M). A PL/pgSQL
-- function's plan is kept for the session. Same expressions, so the same
-- results, the same markings (stable) and, with create or replace, the same
-- grants.

create or replace function public.blocked_between(p_user_id uuid, p_other_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select exists (
      select 1
      from public.blocks b
      where (b.blocker_id = p_user_id and b.blocked_id = p_other_user_id)
         or (b.blocker_id = p_other_user_id and b.blocked_id = p_user_id)
    )
  );
end;
$$;

create or replace function public.is_online(p_user_id uuid)
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

create or replace function public.without_blocked(p_recipients jsonb, p_user_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(r order by r ->> 'user_id', r ->> 'connection_id'), '[]'::jsonb)
    from jsonb_array_elements(p_recipients) as r
    where not public.blocked_between(p_user_id, (r ->> 'user_id')::uuid)
  );
end;
$$;

create or replace function public.receipt_recipients(p_kind text, p_conversation_id uuid, p_user_id uuid, p_audience uuid[])
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

create or replace function public.are_contacts(p_user_id uuid, p_other_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select exists (
      select 1
      from public.participants a
      join public.participants b on b.conversation_id = a.conversation_id
      join public.conversations c on c.id = a.conversation_id
      where a.user_id = p_user_id
        and a.left_at is null
        and a.first_sent_at is not null
        and b.user_id = p_other_user_id
        and b.left_at is null
        and b.first_sent_at is not null
        and c.kind <> 'room'
    )
  );
end;
$$;

create or replace function public.presence_visible(p_viewer uuid, p_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return p_viewer is not null
     and p_user_id is not null
     and (
       p_viewer = p_user_id
       or (public.are_contacts(p_viewer, p_user_id) and not public.blocked_between(p_viewer, p_user_id))
     );
end;
$$;

create or replace function public.contact_recipients(p_user_id uuid)
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
    where c.user_id in (
        select b.user_id
        from public.participants a
        join public.participants b on b.conversation_id = a.conversation_id
        join public.conversations v on v.id = a.conversation_id
        where a.user_id = p_user_id
          and a.left_at is null
          and a.first_sent_at is not null
          and b.user_id <> p_user_id
          and b.left_at is null
          and b.first_sent_at is not null
          and v.kind <> 'room'
      )
      and public.connection_is_live(c.token_exp)
      and public.presence_visible(c.user_id, p_user_id)
  );
end;
$$;
