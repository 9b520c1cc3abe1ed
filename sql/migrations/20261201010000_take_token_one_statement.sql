-- take_token takes its token in one upsert rather than three statements
-- (insert, select for update, update): every send, edit, typing indicator
-- and rate-limited conversation change runs it.

create or replace function public.take_token(p_user_id uuid, p_action text, p_per_minute int, p_burst int)
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
