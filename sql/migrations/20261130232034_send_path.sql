-- The database side of a send, cheaper in a large conversation: the per-row
-- function calls of send_message's queries made set-based or inlined.

-- connection_is_live (20_connections.sql), now inlined where it is asked.
-- Asked for every connection of every member on each send, so it is written
-- to be inlined into the query that asks: no SET clause (one would make each
-- row a function call of its own), and nothing in its body that a search
-- path could change (pg_catalog, named).
create or replace function public.connection_is_live(p_token_exp timestamptz)
returns boolean
language sql
stable
as $$
  select p_token_exp is null or p_token_exp operator(pg_catalog.>) pg_catalog.now()
$$;

-- The users with a block between them and a user, either way: the set form
-- of blocked_between, so that a query over many users (everyone to be
-- notified of a message) asks once rather than once a user.
create function public.blocked_with(p_user_id uuid)
returns setof uuid
language sql
stable
set search_path = ''
as $$
  select b.blocked_id from public.blocks b where b.blocker_id = p_user_id
  union
  select b.blocker_id from public.blocks b where b.blocked_id = p_user_id
$$;
revoke execute on function public.blocked_with(uuid) from public, anon, authenticated, service_role;

-- The users to tell of a message in a conversation, decided with the message
-- in send_message's transaction: current participants other than the sender
-- with no live connection (a live socket hears message.created), who have not
-- muted the conversation and have no block with the sender either way. Null
-- when nobody, else {conversation_id, message_id, user_ids}: what the sending
-- function hands to the notification function.
-- Set-based (an anti-join on live connections, the sender's blocks read once)
-- rather than is_online and blocked_between for each member: in a room of a
-- thousand those were a thousand queries each on every send.
create or replace function public.notification_request(p_conversation_id uuid, p_message_id uuid, p_sender uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
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
$$;
