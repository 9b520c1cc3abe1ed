-- People: who a chat screen can name, as a member, a stranger and anon.
-- Participants carry their public profile (never presence) and former members
-- are not listed; a direct conversation's list entry names its counterpart;
-- get_profiles answers profiles by id by the rule search_users follows
-- (can_see_profile), with presence for contacts only, and refuses bad input.

create temporary table fixture (name text primary key, id uuid not null) on commit drop;

-- alice, bob and carol share a group; carol left it. alice and bob have a
-- 1:1 in which both have sent (contacts). dave shares nothing with anyone.
-- Everyone is online.
do $$
declare
  v_group uuid := tests.make_conversation('group', tests.alice(), array[tests.bob(), tests.carol()]);
  v_direct uuid := (public.open_direct_conversation(tests.alice(), tests.bob()) -> 'result' -> 'conversation' ->> 'id')::uuid;
begin
  perform public.leave_conversation(tests.carol(), v_group);
  perform tests.take_part(v_direct, array[tests.alice(), tests.bob()]);
  update public.profiles set avatar_url = 'https://example.com/bob.png' where id = tests.bob();
  perform tests.connect('alice-1', tests.alice());
  perform tests.connect('bob-1', tests.bob());
  perform tests.connect('carol-1', tests.carol());
  perform tests.connect('dave-1', tests.dave());
  insert into fixture values ('group', v_group), ('direct', v_direct);
end
$$;

-- The expected public profiles.
create function pg_temp.public_profile(p_id uuid) returns jsonb language sql as $$
  select case p_id
    when tests.alice() then '{"username": "alice", "display_name": "Alice", "avatar_url": null}'::jsonb
    when tests.bob() then '{"username": "bob", "display_name": "Bob", "avatar_url": "https://example.com/bob.png"}'::jsonb
    when tests.carol() then '{"username": "carol", "display_name": "Carol", "avatar_url": null}'::jsonb
    when tests.dave() then '{"username": "dave", "display_name": "Dave", "avatar_url": null}'::jsonb
  end || jsonb_build_object('id', p_id)
$$;

-- Conversation details: each current participant with their public profile,
-- no presence; the one who left is not shown.
do $$
declare
  v_group uuid := (select id from fixture where name = 'group');
  v_conversation jsonb;
  v_participant jsonb;
begin
  perform tests.act_as(tests.bob());
  v_conversation := public.get_conversation(v_group) -> 'conversation';
  perform tests.reset();

  perform tests.eq(
    (select jsonb_agg(p -> 'user_id' order by p ->> 'user_id') from jsonb_array_elements(v_conversation -> 'participants') p),
    tests.sorted(jsonb_build_array(tests.alice(), tests.bob())), 'current participants only (carol left)');
  for v_participant in select * from jsonb_array_elements(v_conversation -> 'participants') loop
    perform tests.eq(v_participant -> 'profile', pg_temp.public_profile((v_participant ->> 'user_id')::uuid),
      'the profile of ' || (v_participant ->> 'user_id'));
  end loop;
  perform tests.check(v_conversation::text not like '%online%' and v_conversation::text not like '%last_seen%',
    'no presence in a conversation: ' || v_conversation::text);
end
$$;

-- The list: a 1:1 names its counterpart (public profile only), a group none;
-- the counterpart stays named after leaving, and is null once their account
-- is gone (other_user_id still says who it was).
do $$
declare
  v_direct uuid := (select id from fixture where name = 'direct');
  v_group uuid := (select id from fixture where name = 'group');
  v_list jsonb;
begin
  perform tests.act_as(tests.alice());
  v_list := public.list_conversations(100) -> 'conversations';
  perform tests.eq((select c -> 'counterpart' from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_direct),
    pg_temp.public_profile(tests.bob()), 'alice''s 1:1 names bob');
  perform tests.eq((select c -> 'counterpart' from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_group),
    'null'::jsonb, 'a group has no counterpart');
  perform tests.act_as(tests.bob());
  perform tests.eq((select c -> 'counterpart' from jsonb_array_elements(public.list_conversations(100) -> 'conversations') c
                     where (c ->> 'id')::uuid = v_direct),
    pg_temp.public_profile(tests.alice()), 'bob''s side names alice');
  perform tests.reset();

  perform public.leave_conversation(tests.bob(), v_direct);
  perform tests.act_as(tests.alice());
  perform tests.eq((select c -> 'counterpart' from jsonb_array_elements(public.list_conversations(100) -> 'conversations') c
                     where (c ->> 'id')::uuid = v_direct),
    pg_temp.public_profile(tests.bob()), 'the counterpart after leaving');
  perform tests.reset();

  delete from auth.users where id = tests.bob();
  perform tests.act_as(tests.alice());
  v_list := public.list_conversations(100) -> 'conversations';
  perform tests.eq((select c -> 'counterpart' from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_direct),
    'null'::jsonb, 'a deleted counterpart');
  perform tests.eq((select c ->> 'other_user_id' from jsonb_array_elements(v_list) c where (c ->> 'id')::uuid = v_direct),
    tests.bob()::text, 'other_user_id of a deleted counterpart');
  perform tests.reset();
  raise exception 'undo' using errcode = 'TUNDO';
exception
  when sqlstate 'TUNDO' then null;  -- the leave and the deletion are undone for the blocks below
end
$$;

-- get_profiles as a member: the caller and co-members with presence, a former
-- co-member and a stranger by their public profile without presence, unknown
-- ids left out; ordered by username; duplicates answered once.
do $$
declare
  v_users jsonb;
  v_user jsonb;
  v_unknown uuid := gen_random_uuid();
begin
  perform tests.act_as(tests.alice());
  v_users := public.get_profiles(array[tests.dave(), tests.bob(), v_unknown, tests.carol(), tests.alice(), tests.bob()])
    -> 'users';
  perform tests.reset();

  perform tests.eq((select jsonb_agg(u ->> 'username') from jsonb_array_elements(v_users) u),
    '["alice", "bob", "carol", "dave"]'::jsonb, 'who is answered, by username');
  for v_user in select * from jsonb_array_elements(v_users) loop
    perform tests.eq(v_user - 'online' - 'last_seen_at', pg_temp.public_profile((v_user ->> 'id')::uuid),
      'public profile of ' || (v_user ->> 'username'));
    perform tests.eq(v_user -> 'online',
      case when v_user ->> 'username' in ('alice', 'bob') then 'true' else 'null' end::jsonb,
      'online of ' || (v_user ->> 'username'));
    perform tests.eq(jsonb_typeof(v_user -> 'last_seen_at'),
      case when v_user ->> 'username' in ('alice', 'bob') then 'string' else 'null' end,
      'last_seen_at of ' || (v_user ->> 'username'));
  end loop;
end
$$;

-- As a stranger: the same public profiles (that is what search_users shows
-- everyone), no one's presence but dave's own; nothing for unknown ids.
do $$
declare
  v_users jsonb;
begin
  perform tests.act_as(tests.dave());
  v_users := public.get_profiles(array[tests.alice(), tests.bob(), tests.dave()]) -> 'users';
  perform tests.eq((select jsonb_agg(jsonb_build_array(u ->> 'username', u -> 'online', u -> 'last_seen_at' is not null and u -> 'last_seen_at' <> 'null'))
                     from jsonb_array_elements(v_users) u),
    '[["alice", null, false], ["bob", null, false], ["dave", true, true]]'::jsonb, 'a stranger sees no presence');
  perform tests.eq(public.get_profiles(array[gen_random_uuid()]), '{"users": []}'::jsonb, 'an unknown id');
  -- The same rule as search: whoever search finds, get_profiles answers.
  perform tests.eq(
    (select jsonb_agg(u order by u ->> 'username') from jsonb_array_elements(public.search_users('') -> 'users') u),
    public.get_profiles(array[tests.alice(), tests.bob(), tests.carol()]) -> 'users',
    'search_users and get_profiles answer alike');
  perform tests.reset();
end
$$;

-- Bad input; anon and a service call without a user get nothing.
do $$
begin
  perform tests.act_as(tests.alice());
  perform tests.raises('select public.get_profiles(null)', 'invalid_argument', 'null ids');
  perform tests.raises('select public.get_profiles(array[]::uuid[])', 'invalid_argument', 'no ids');
  perform tests.raises(format('select public.get_profiles(array[%s]::uuid[])',
      (select string_agg(quote_literal(gen_random_uuid()), ',') from generate_series(1, 101))),
    'invalid_argument', '101 ids');
  perform tests.eq(jsonb_array_length(public.get_profiles(
      (select array_agg(tests.bob()) from generate_series(1, 100))) -> 'users'), 1, '100 ids are allowed');

  perform tests.act_as_anon();
  perform tests.denied(format('select public.get_profiles(array[%L]::uuid[])', tests.bob()), 'anon calls get_profiles');
  perform tests.denied(format('select public.can_see_profile(%L)', tests.bob()), 'anon asks can_see_profile');
  perform tests.denied('select username from public.profiles', 'anon reads profiles');

  perform tests.act_as_service();
  perform tests.raises(format('select public.get_profiles(array[%L]::uuid[])', tests.bob()), 'invalid_argument',
    'service_role without a user');
  perform tests.reset();
end
$$;

-- The table answers directly what get_profiles does (one rule), its public
-- columns only.
do $$
begin
  perform tests.act_as(tests.dave());
  perform tests.eq(tests.count(format('select username from public.profiles where id = %L', tests.bob())), 1::bigint,
    'a stranger reads the public profile directly');
  perform tests.eq(public.can_see_profile(tests.bob()), true, 'can_see_profile as a signed-in user');
  perform tests.denied(format('select last_seen_at from public.profiles where id = %L', tests.bob()),
    'a stranger reads presence directly');
  perform tests.reset();
end
$$;
