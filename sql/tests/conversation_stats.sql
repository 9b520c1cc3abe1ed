-- conversation_stats and conversation_connections: counts about one
-- conversation for its participants; live connections only; never a
-- connection id.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol(), tests.dave()]);
begin
  perform tests.send(tests.alice(), v_group, 'one');
  perform tests.send(tests.bob(), v_group, 'two');
  perform tests.send(tests.bob(), v_group, 'three');
  perform public.delete_message(tests.bob(), (select id from public.messages where body = 'two'));
  perform public.leave_conversation(tests.dave(), v_group);
  -- carol, who asks below, has taken part too: alice and bob are her contacts.
  perform tests.take_part(v_group, array[tests.carol()]);

  -- alice twice, bob once live and once expired, carol only expired, dave
  -- (who left) live.
  perform tests.connect('alice-phone-secret-id', tests.alice());
  perform tests.connect('alice-laptop-secret-id', tests.alice());
  perform tests.connect('bob-phone-secret-id', tests.bob());
  perform tests.connect('bob-old-secret-id', tests.bob(), false);
  perform tests.connect('carol-old-secret-id', tests.carol(), false);
  perform tests.connect('dave-phone-secret-id', tests.dave());
  insert into fixture values ('group', v_group);
end
$$;

do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_stats jsonb;
  v_connections jsonb;
begin
  perform tests.act_as(tests.carol());
  v_stats := public.conversation_stats(v_group);
  v_connections := public.conversation_connections(v_group);
  perform tests.reset();

  perform tests.eq(v_stats, jsonb_build_object(
    'conversation_id', v_group, 'kind', 'group', 'name', 'test',
    'message_count', 2, 'participant_count', 3, 'online_count', 2,
    'last_message', (select public.message_json(m) from public.messages m where m.body = 'three'),
    'last_activity_at', (select created_at from public.conversation_events where conversation_id = v_group and seq = 6),
    'last_seq', 6), 'stats');

  perform tests.eq(v_connections, jsonb_build_object(
    'conversation_id', v_group,
    'users', (select jsonb_agg(u order by u ->> 'user_id') from jsonb_array_elements(jsonb_build_array(
      jsonb_build_object('user_id', tests.alice(), 'connections', 2),
      jsonb_build_object('user_id', tests.bob(), 'connections', 1))) u),
    'total_connections', 3), 'connections: current members with a live connection');
  perform tests.check(v_connections::text not like '%secret-id%' and v_stats::text not like '%secret-id%',
    'a connection id in the answers');
end
$$;

-- A conversation with nothing in it.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.dave(), array[]::uuid[]);
  v_stats jsonb;
begin
  perform tests.act_as(tests.dave());
  v_stats := public.conversation_stats(v_group);
  perform tests.eq(v_stats -> 'last_message', 'null'::jsonb, 'no last message');
  perform tests.eq(v_stats -> 'message_count', '0'::jsonb, 'no messages');
  perform tests.eq(v_stats -> 'online_count', '1'::jsonb, 'dave online');
  perform tests.eq(v_stats -> 'last_seq', '1'::jsonb, 'last_seq');
  perform tests.eq(public.conversation_connections(v_group) -> 'total_connections', '1'::jsonb, 'dave''s connection');
  perform tests.reset();
end
$$;

-- Outsiders, missing ids, former members, anon: refused alike.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_function text;
  v_foreign jsonb;
begin
  foreach v_function in array array['conversation_stats', 'conversation_connections'] loop
    perform tests.act_as(tests.dave());
    v_foreign := tests.error_of(format('select public.%I(%L)', v_function, v_group));
    perform tests.eq(v_foreign ->> 'message', 'not_a_participant', 'a former member runs ' || v_function);
    perform tests.act_as(gen_random_uuid());
    perform tests.eq(tests.error_of(format('select public.%I(%L)', v_function, v_group)), v_foreign,
      'an outsider runs ' || v_function);
    perform tests.eq(tests.error_of(format('select public.%I(%L)', v_function, gen_random_uuid())), v_foreign,
      v_function || ' of a missing conversation');
    perform tests.act_as_service();
    perform tests.eq(tests.error_of(format('select public.%I(%L)', v_function, v_group)), v_foreign,
      'service_role without a user runs ' || v_function);
    perform tests.act_as_anon();
    perform tests.denied(format('select public.%I(%L)', v_function, v_group), 'anon runs ' || v_function);
  end loop;
  perform tests.reset();
end
$$;
