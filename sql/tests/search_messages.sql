-- search_messages: English and Spanish stemming, only the caller's current
-- conversations, deleted (and edited-away) text never matches, ranking,
-- paging and validation.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob()]);
  v_other uuid := tests.make_conversation('group', tests.alice(), array[tests.carol()]);
  v_foreign uuid := tests.make_conversation('group', tests.bob(), array[tests.dave()]);
  v_deleted uuid;
  v_edited uuid;
begin
  insert into fixture values ('group', v_group), ('other', v_other), ('foreign', v_foreign);
  insert into fixture values ('dogs', tests.id(tests.send(tests.alice(), v_group, 'The dogs are running in the park')));
  insert into fixture values ('perro', tests.id(tests.send(tests.bob(), v_group, 'Mi perro corre muy rápido')));
  insert into fixture values ('canciones', tests.id(tests.send(tests.bob(), v_group, 'Los niños cantan canciones')));
  perform tests.send(tests.alice(), v_group, 'nothing to see here');
  insert into fixture values ('carol', tests.id(tests.send(tests.carol(), v_other, 'carol runs every morning')));
  perform tests.send(tests.dave(), v_foreign, 'dave is running elsewhere, with a secret');

  v_deleted := tests.id(tests.send(tests.bob(), v_group, 'running out of secret passwords'));
  perform public.delete_message(tests.bob(), v_deleted);
  v_edited := tests.id(tests.send(tests.alice(), v_group, 'I went jogging'));
  perform public.edit_message(tests.alice(), v_edited, 'I went swimming');
  insert into fixture values ('deleted', v_deleted), ('edited', v_edited);
end
$$;

-- The ids of a search's results, in order, as the given user.
create function pg_temp.found(p_user uuid, p_query text, p_conversation_id uuid default null) returns uuid[] language plpgsql as $$
declare
  v_ids uuid[];
begin
  perform tests.act_as(p_user);
  select coalesce(array_agg((r -> 'message' ->> 'id')::uuid order by n), '{}'::uuid[]) into v_ids
  from jsonb_array_elements(public.search_messages(p_query, p_conversation_id) -> 'results') with ordinality as t (r, n);
  perform tests.reset();
  return v_ids;
end;
$$;

create function pg_temp.f(p_name text) returns uuid language sql as $$
  select id from fixture where name = p_name
$$;

-- Stemming in both languages, from either form of a word.
do $$
begin
  -- English: running, runs, run share a stem.
  perform tests.eq(tests.sorted(to_jsonb(pg_temp.found(tests.alice(), 'run'))),
    tests.sorted(to_jsonb(array[pg_temp.f('dogs'), pg_temp.f('carol')])), '"run" finds "running" and "runs"');
  perform tests.eq(tests.sorted(to_jsonb(pg_temp.found(tests.alice(), 'runs'))),
    tests.sorted(to_jsonb(array[pg_temp.f('dogs'), pg_temp.f('carol')])), '"runs" finds "running" and "runs"');
  perform tests.eq(pg_temp.found(tests.alice(), 'dog'), array[pg_temp.f('dogs')], '"dog" finds "dogs"');
  perform tests.eq(pg_temp.found(tests.alice(), 'parks'), array[pg_temp.f('dogs')], '"parks" finds "park"');

  -- Spanish: corre, correr, corriendo share a stem; so do perro / perros
  -- and canción / canciones (accent or not), niño / niños.
  perform tests.eq(pg_temp.found(tests.alice(), 'correr'), array[pg_temp.f('perro')], '"correr" finds "corre"');
  perform tests.eq(pg_temp.found(tests.alice(), 'corriendo'), array[pg_temp.f('perro')], '"corriendo" finds "corre"');
  perform tests.eq(pg_temp.found(tests.alice(), 'perros'), array[pg_temp.f('perro')], '"perros" finds "perro"');
  perform tests.eq(pg_temp.found(tests.alice(), 'canción'), array[pg_temp.f('canciones')], '"canción" finds "canciones"');
  perform tests.eq(pg_temp.found(tests.alice(), 'cancion'), array[pg_temp.f('canciones')], '"cancion" finds "canciones"');
  perform tests.eq(pg_temp.found(tests.alice(), 'niño'), array[pg_temp.f('canciones')], '"niño" finds "niños"');

  -- Web search syntax: phrases and exclusions.
  perform tests.eq(pg_temp.found(tests.alice(), '"running in the park"'), array[pg_temp.f('dogs')], 'a phrase');
  perform tests.eq(pg_temp.found(tests.alice(), '"park running"'), '{}'::uuid[], 'a phrase in the wrong order');
  perform tests.eq(pg_temp.found(tests.alice(), 'run -park'), array[pg_temp.f('carol')], 'an exclusion');
  perform tests.eq(pg_temp.found(tests.alice(), 'perro rápido'), array[pg_temp.f('perro')], 'all words');
  perform tests.eq(pg_temp.found(tests.alice(), 'perro gato'), '{}'::uuid[], 'not all words');
end
$$;

-- Only current conversations; deleted messages and edited-away text never match.
do $$
begin
  perform tests.eq(pg_temp.found(tests.dave(), 'run'), array[(select id from public.messages where body like 'dave is running%')],
    'dave finds only his own conversation''s message');
  perform tests.eq(pg_temp.found(tests.alice(), 'secret'), '{}'::uuid[], 'a deleted message, or a foreign one');
  perform tests.eq(pg_temp.found(tests.bob(), 'passwords'), '{}'::uuid[], 'its author searches a deleted message');
  perform tests.eq((select search from public.messages where id = pg_temp.f('deleted')), ''::tsvector,
    'a deleted message''s search column is empty');
  perform tests.eq(pg_temp.found(tests.alice(), 'jogging'), '{}'::uuid[], 'edited-away text');
  perform tests.eq(pg_temp.found(tests.alice(), 'swimming'), array[pg_temp.f('edited')], 'edited-in text');
  -- Even a deleted row whose search column still matched would be excluded.
  update public.messages set deleted_at = now() where id = pg_temp.f('perro');
  perform tests.eq(pg_temp.found(tests.alice(), 'correr'), '{}'::uuid[], 'a message marked deleted with its body');
  update public.messages set deleted_at = null where id = pg_temp.f('perro');

  -- One conversation only.
  perform tests.eq(pg_temp.found(tests.alice(), 'run', pg_temp.f('other')), array[pg_temp.f('carol')], 'within one conversation');
  perform tests.eq(pg_temp.found(tests.alice(), 'run', pg_temp.f('group')), array[pg_temp.f('dogs')], 'within the other');

  -- Leaving a conversation leaves its messages out of search.
  update public.participants set left_at = now() where conversation_id = pg_temp.f('other') and user_id = tests.alice();
  perform tests.eq(pg_temp.found(tests.alice(), 'run'), array[pg_temp.f('dogs')], 'after leaving a conversation');
  update public.participants set left_at = null where conversation_id = pg_temp.f('other') and user_id = tests.alice();
end
$$;

-- Refusals.
do $$
declare
  v_conversation uuid := pg_temp.f('foreign');
  v_foreign jsonb;
begin
  perform tests.act_as(tests.alice());
  v_foreign := tests.error_of(format('select public.search_messages(''run'', %L)', v_conversation));
  perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'searching a foreign conversation');
  perform tests.eq(tests.error_of(format('select public.search_messages(''run'', %L)', gen_random_uuid())), v_foreign,
    'searching a missing conversation looks the same');

  perform tests.raises('select public.search_messages(null)', 'invalid_query', 'no query');
  perform tests.raises('select public.search_messages('''')', 'invalid_query', 'an empty query');
  perform tests.raises(format('select public.search_messages(%L)', E' \u00a0\t'), 'invalid_query', 'a blank query');
  perform tests.raises(format('select public.search_messages(%L)', repeat('a', 201)), 'invalid_query', '201 characters');
  perform tests.eq(tests.error_of(format('select public.search_messages(%L)', repeat('a', 200))), null, '200 characters');
  perform tests.raises('select public.search_messages(''run'', null, 20, -1)', 'invalid_argument', 'a negative offset');
  perform tests.raises('select public.search_messages(''run'', null, 20, 10001)', 'invalid_argument', 'offset 10001');
  perform tests.eq(public.search_messages('run', null, 20, 10000), '{"results": [], "next_offset": null}'::jsonb, 'offset 10000');
  -- Punctuation-only or stop-word-only queries are not errors; they find nothing.
  perform tests.eq(public.search_messages('!!!') -> 'results', '[]'::jsonb, 'a query without words');

  perform tests.act_as_service();
  perform tests.eq(public.search_messages('run') -> 'results', '[]'::jsonb, 'service_role searches without a user');
  perform tests.reset();
end
$$;

-- Results: the Message JSON and a rank, best first; equal ranks newest first;
-- pages by offset return every match exactly once.
do $$
declare
  v_group uuid := pg_temp.f('group');
  v_page jsonb;
  v_best jsonb;
  v_seen uuid[] := '{}';
  v_offset int := 0;
  v_pages int := 0;
  i int;
begin
  for i in 1..23 loop
    perform tests.send(tests.bob(), v_group, 'apple pie number ' || i);
  end loop;
  v_best := tests.send(tests.bob(), v_group, 'apple apple apple: apples everywhere');

  perform tests.act_as(tests.alice());
  v_page := public.search_messages('apple', v_group, 5);
  perform tests.eq(
    (select array_agg(k order by k) from jsonb_object_keys(v_page -> 'results' -> 0) k), array['message', 'rank'], 'result keys');
  perform tests.eq(v_page -> 'results' -> 0 -> 'message', v_best, 'the best match first');
  perform tests.eq(jsonb_typeof(v_page -> 'results' -> 0 -> 'rank'), 'number', 'rank is a number');
  perform tests.check((v_page -> 'results' -> 0 ->> 'rank')::float > (v_page -> 'results' -> 1 ->> 'rank')::float,
    'ranked by relevance');
  perform tests.eq((v_page -> 'results' -> 1 -> 'message' ->> 'body'), 'apple pie number 23', 'equal ranks, newest first');
  perform tests.eq((v_page -> 'results' -> 2 -> 'message' ->> 'body'), 'apple pie number 22', 'then the next newest');
  perform tests.eq(v_page -> 'next_offset', '5'::jsonb, 'next_offset of the first page');

  loop
    v_page := public.search_messages('apple', v_group, 10, v_offset);
    v_pages := v_pages + 1;
    v_seen := v_seen || array(select (r -> 'message' ->> 'id')::uuid from jsonb_array_elements(v_page -> 'results') r);
    exit when v_page -> 'next_offset' = 'null'::jsonb;
    v_offset := (v_page ->> 'next_offset')::int;
  end loop;
  perform tests.eq(v_pages, 3, 'pages of 10 for 24 matches');
  perform tests.eq(cardinality(v_seen), 24, 'results over all pages');
  perform tests.eq((select count(distinct u) from unnest(v_seen) u), 24::bigint, 'distinct results over all pages');

  perform tests.eq(jsonb_array_length(public.search_messages('apple', v_group, 1000) -> 'results'), 24, 'limit capped at 50');
  perform tests.eq(jsonb_array_length(public.search_messages('apple', v_group, 0) -> 'results'), 1, 'limit 0 acts as 1');
  perform tests.eq(public.search_messages('apple', v_group, 24) -> 'next_offset', 'null'::jsonb, 'an exact last page');
  perform tests.eq(jsonb_array_length(public.search_messages('apple') -> 'results'), 20, 'default limit 20');
  perform tests.reset();
end
$$;
