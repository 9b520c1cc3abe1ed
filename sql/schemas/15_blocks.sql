-- Blocks: a user stops another. A block is one-sided to make (only the
-- blocker can lift it) and cuts both ways once made: neither of the two can
-- open a direct conversation with the other, send or edit in their direct
-- conversations (blocked; deleting stays allowed), or put the other in a
-- group or room (create_conversation, add_members), and neither sees the
-- other's presence, typing or read receipts (presence_visible,
-- without_blocked). In groups and rooms they already share both stay
-- members and messages flow; the blocker's client hides the blocked user's
-- messages, knowing whom from list_blocks.
--
-- A user reads only the blocks they made: the blocked user is never told, and
-- learns only what a refused direct message must say (that the two of them
-- cannot message each other, not who decided it). Writes go through
-- block_user and unblock_user, which check the other user and the cap.

create table public.blocks (
  blocker_id uuid not null references public.profiles (id) on delete cascade,
  blocked_id uuid not null references public.profiles (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (blocker_id, blocked_id),
  constraint blocks_not_self check (blocker_id <> blocked_id)
);

comment on table public.blocks is
  'Who blocked whom; each user reads their own. Written by block_user and unblock_user.';

-- "Who blocked me" (blocked_between asks both ways; deleting a user).
create index blocks_blocked_id_idx on public.blocks (blocked_id);

alter table public.blocks enable row level security;
revoke all on table public.blocks from anon, authenticated;
grant select on table public.blocks to authenticated;
grant all on table public.blocks to service_role;

create policy "blocks are readable by the user who made them"
  on public.blocks
  for select
  to authenticated
  using (blocker_id = (select public.caller_id()));

-- Whether either of two users blocked the other: what a block cuts is cut
-- both ways.
create function public.blocked_between(p_user_id uuid, p_other_user_id uuid)
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
revoke execute on function public.blocked_between(uuid, uuid) from public, anon, authenticated, service_role;

-- The users with a block between them and a user, either way: the set form
-- of blocked_between, so that a query over many users (everyone to be
-- notified of a message) asks once rather than once a user.
-- PL/pgSQL, not SQL: every send runs it, and its plan is kept (sql/README.md).
create function public.blocked_with(p_user_id uuid)
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
revoke execute on function public.blocked_with(uuid) from public, anon, authenticated, service_role;

-- ===========================================================================
-- User-facing RPCs (authenticated; the caller is public.caller_id())
-- ===========================================================================

-- Blocks a user. Blocking again is not an error (created = false). At most
-- 1000 blocks per user: enough for anyone, and it bounds list_blocks.
create function public.block_user(p_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
  v_block public.blocks;
  v_created boolean := false;
begin
  if p_user_id is null then
    perform public.api_error('invalid_argument', 'user_id is required.');
  end if;
  if p_user_id = v_me then
    perform public.api_error('invalid_argument', 'You cannot block yourself.');
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user_id) then
    perform public.api_error('user_not_found', 'No such user.');
  end if;

  -- The caller's profile row serializes the caller's blocks, so two at once
  -- cannot both pass the cap.
  perform 1 from public.profiles p where p.id = v_me for no key update;
  if not found then
    perform public.api_error('user_not_found', 'Your profile does not exist.');
  end if;

  select b.* into v_block
  from public.blocks b
  where b.blocker_id = v_me
    and b.blocked_id = p_user_id;
  if not found then
    if (select count(*) from public.blocks b where b.blocker_id = v_me) >= 1000 then
      perform public.api_error('too_many_blocks', 'At most 1000 users can be blocked; unblock someone first.');
    end if;
    -- The pair's direct conversations, locked as every write into them
    -- locks them (refuse_if_blocked): a send or edit under way commits
    -- before the block does, and one that comes after sees the block.
    perform 1
    from public.conversations c
    where c.kind = 'direct'
      and c.direct_user_low = least(v_me, p_user_id)
      and c.direct_user_high = greatest(v_me, p_user_id)
    order by c.id
    for no key update;
    insert into public.blocks (blocker_id, blocked_id)
    values (v_me, p_user_id)
    returning * into v_block;
    v_created := true;
  end if;

  return jsonb_build_object(
    'block', jsonb_build_object('user_id', v_block.blocked_id, 'created_at', v_block.created_at),
    'created', v_created
  );
end;
$$;
revoke execute on function public.block_user(uuid) from public, anon;
grant execute on function public.block_user(uuid) to authenticated, service_role;

-- Lifts the caller's block of a user. Lifting a block that does not exist is
-- not an error (removed = false): the result is the same.
create function public.unblock_user(p_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
begin
  if p_user_id is null then
    perform public.api_error('invalid_argument', 'user_id is required.');
  end if;

  delete from public.blocks b
   where b.blocker_id = v_me
     and b.blocked_id = p_user_id;

  return jsonb_build_object('user_id', p_user_id, 'removed', found);
end;
$$;
revoke execute on function public.unblock_user(uuid) from public, anon;
grant execute on function public.unblock_user(uuid) to authenticated, service_role;

-- The users the caller blocks, newest first, each with the public profile a
-- client needs to show and hide them (all of them: block_user caps them).
create function public.list_blocks()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.require_caller();
begin
  return jsonb_build_object('blocks', (
    select coalesce(jsonb_agg(
      jsonb_build_object('user_id', b.blocked_id, 'created_at', b.created_at, 'profile', public.public_profile_json(p))
      order by b.created_at desc, b.blocked_id
    ), '[]'::jsonb)
    from public.blocks b
    join public.profiles p on p.id = b.blocked_id
    where b.blocker_id = v_me
  ));
end;
$$;
revoke execute on function public.list_blocks() from public, anon;
grant execute on function public.list_blocks() to authenticated, service_role;
