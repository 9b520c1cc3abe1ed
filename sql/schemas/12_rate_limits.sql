-- Rate limits: a token bucket per user and action, taken inside the write it
-- guards ('message': send_message, edit_message; 'typing':
-- send_typing; 'conversation': create_conversation,
-- open_direct_conversation, update_conversation's rename, add_members;
-- 'join': join_room), so that a refused call costs the same
-- one round trip, stores nothing (the refusal rolls the whole call back, the
-- bucket's own update with it) and cannot be raced past.
--
-- The limits are the deployment's (template.yaml parameters, given to the
-- chat functions as environment variables): the functions pass them with
-- every call, so the database holds no configuration to keep in step with the
-- template. The guarded RPCs are internal (service_role only), so no user can
-- pass limits of their own; a call without limits (null, as from SQL tests
-- and maintenance scripts) is not limited.
--
-- Refill is computed from the bucket's last update (no background job): a
-- bucket holds at most `burst` tokens and gains `per_minute` a minute.

create table public.rate_limit_buckets (
  user_id uuid not null references public.profiles (id) on delete cascade,
  action text not null
    constraint rate_limit_buckets_action check (action in ('message', 'typing', 'conversation', 'join')),
  -- What was left after the last take (fractions accumulate between takes).
  tokens double precision not null,
  updated_at timestamptz not null,
  primary key (user_id, action)
);

-- Deliberately no policy and no grant for any API role: only the functions
-- below change it, inside the write they guard. Reading it would tell a user
-- nothing the 429s do not; resetting it would lift the limit.
alter table public.rate_limit_buckets enable row level security;
revoke all on table public.rate_limit_buckets from anon, authenticated, service_role;

-- Takes one token of p_user_id's bucket for p_action, or refuses with
-- rate_limited and, in the hint, {"retry_after_ms": n}: how long until a
-- token is there. A refusal raises, so the caller's transaction (and this
-- bucket's update) rolls back: refused calls do not drain the bucket further.
-- The bucket's row lock serializes one user's concurrent takes of one action;
-- every guarded RPC takes it before any other lock, so the order is the same
-- everywhere.
-- One statement: a new bucket starts full and gives its first token; an
-- existing one is refilled for the time since its last take (never negative:
-- a transaction that started before the last take sees an updated_at after
-- its own clock) up to the burst, and gives one. Less than nothing left means
-- there was no token: the refusal rolls the update back.
create function public.take_token(p_user_id uuid, p_action text, p_per_minute int, p_burst int)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_left double precision;
  v_retry_after_ms bigint;
begin
  if p_per_minute is null and p_burst is null then
    return;
  end if;
  if p_per_minute is null or p_per_minute < 1 or p_burst is null or p_burst < 1 then
    perform public.api_error('invalid_argument', 'A rate limit needs at least 1 per minute and a burst of at least 1.');
  end if;

  insert into public.rate_limit_buckets as b (user_id, action, tokens, updated_at)
  values (p_user_id, p_action, p_burst - 1, v_now)
  on conflict (user_id, action) do update
     set tokens = least(
           p_burst::double precision,
           b.tokens + greatest(0, extract(epoch from v_now - b.updated_at)) * p_per_minute / 60.0
         ) - 1,
         updated_at = greatest(b.updated_at, v_now)
  returning b.tokens into v_left;

  if v_left < 0 then
    v_retry_after_ms := ceil(-v_left * 60000.0 / p_per_minute);
    perform public.api_error('rate_limited',
      format('Too many %s requests; try again in %s ms.', p_action, v_retry_after_ms),
      jsonb_build_object('retry_after_ms', v_retry_after_ms));
  end if;
end;
$$;
revoke execute on function public.take_token(uuid, text, int, int) from public, anon, authenticated, service_role;
