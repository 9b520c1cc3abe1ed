-- Full-text search of messages (messages.search, a generated column of both
-- the English and the Spanish stemming of the body).

create index messages_search_idx on public.messages using gin (search);

-- Full-text search of the messages the caller can read (current
-- conversations only), in English and Spanish at once: messages.search holds
-- both stemmings, and the query is stemmed both ways. Deleted messages never
-- match (their body is gone, and they are excluded besides).
create function public.search_messages(
  p_query text,
  p_conversation_id uuid default null,
  p_limit int default 20,
  p_offset int default 0
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_me uuid := public.caller_id();
  v_limit int := least(greatest(coalesce(p_limit, 20), 1), 50);
  v_offset int := coalesce(p_offset, 0);
  v_text text := public.validated_query_text(p_query, 200);
  v_query tsquery;
  v_results jsonb;
  v_rows int;
begin
  if v_text = '' then
    perform public.api_error('invalid_query', 'The query must be 1 to 200 characters.');
  end if;
  if v_offset < 0 or v_offset > 10000 then
    perform public.api_error('invalid_argument', 'offset must be 0 to 10000.');
  end if;
  if p_conversation_id is not null then
    perform public.require_participant(p_conversation_id, v_me);
  end if;

  v_query := websearch_to_tsquery('english', v_text) || websearch_to_tsquery('spanish', v_text);

  -- One row more than the page says whether there is more.
  select coalesce(jsonb_agg(jsonb_build_object('message', public.message_json(h.m), 'rank', h.rank) order by h.n), '[]'::jsonb),
         count(*)
  into v_results, v_rows
  from (
    select m, ts_rank(m.search, v_query) as rank,
           row_number() over (order by ts_rank(m.search, v_query) desc, m.seq desc, m.id desc) as n
    from public.messages m
    join public.participants p
      on p.conversation_id = m.conversation_id
     and p.user_id = v_me
     and p.left_at is null
    where (p_conversation_id is null or m.conversation_id = p_conversation_id)
      and m.deleted_at is null
      and m.search @@ v_query
    order by n
    limit v_limit + 1
    offset v_offset
  ) h;

  if v_rows > v_limit then
    v_results := v_results - v_limit;
  end if;

  return jsonb_build_object(
    'results', v_results,
    'next_offset', case when v_rows > v_limit then v_offset + v_limit end
  );
end;
$$;
revoke execute on function public.search_messages(text, uuid, int, int) from public, anon;
grant execute on function public.search_messages(text, uuid, int, int) to authenticated, service_role;
