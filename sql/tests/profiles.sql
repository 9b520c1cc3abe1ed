-- The profile trigger on auth.users, and the seed it ran for.

do $$
begin
  perform tests.eq(
    (select array_agg(username order by username) from public.profiles
      where id in (tests.alice(), tests.bob(), tests.carol(), tests.dave())),
    array['alice', 'bob', 'carol', 'dave'], 'seeded usernames');
  perform tests.eq((select display_name from public.profiles where id = tests.carol()), 'Carol', 'seeded display_name');
end
$$;

do $$
declare
  v_meta uuid := gen_random_uuid();
  v_email uuid := gen_random_uuid();
  v_bare uuid := gen_random_uuid();
  v_taken uuid := gen_random_uuid();
  v_taken_again uuid := gen_random_uuid();
  v_crowded uuid := gen_random_uuid();
  v_dirty uuid := gen_random_uuid();
begin
  insert into auth.users (id, email, raw_user_meta_data) values
    (v_meta, 'erin@example.com', '{"username": "erin_x", "display_name": "Erin", "avatar_url": "https://example.com/e.png"}'),
    (v_email, 'frank.smith@example.com', '{}'),
    (v_bare, null, null);

  perform tests.eq((select username from public.profiles where id = v_meta), 'erin_x', 'username from metadata');
  perform tests.eq((select display_name from public.profiles where id = v_meta), 'Erin', 'display_name from metadata');
  perform tests.eq((select avatar_url from public.profiles where id = v_meta), 'https://example.com/e.png', 'avatar_url from metadata');
  -- Profiles are readable by every signed-in user, so the e-mail never shows.
  perform tests.eq((select username from public.profiles where id = v_email),
    'user_' || left(replace(v_email::text, '-', ''), 8), 'username without metadata');
  perform tests.check((select username || display_name from public.profiles where id = v_email) not like '%frank%',
    'no part of the e-mail in the profile');
  perform tests.eq((select username from public.profiles where id = v_bare),
    'user_' || left(replace(v_bare::text, '-', ''), 8), 'username from the id');

  -- Metadata is cleaned, never a reason to refuse a sign-up.
  insert into auth.users (id, email, raw_user_meta_data) values (v_dirty, 'd@example.com',
    jsonb_build_object('username', E'ev\u0007il', 'display_name', E'E\tve', 'avatar_url', 'javascript:alert(1)'));
  perform tests.eq((select username from public.profiles where id = v_dirty), 'evil', 'control characters dropped');
  perform tests.eq((select display_name from public.profiles where id = v_dirty), 'Eve', 'control characters dropped');
  perform tests.check((select avatar_url is null from public.profiles where id = v_dirty), 'non-https avatar dropped');

  -- A taken username gets a suffix from the user's id, until it is unique.
  insert into auth.users (id, email, raw_user_meta_data) values (v_taken, 'a2@example.com', '{"username": "alice"}');
  insert into auth.users (id, email, raw_user_meta_data) values (v_taken_again, 'a3@example.com', '{"username": "alice"}');
  perform tests.eq((select username from public.profiles where id = v_taken),
    'alice_' || left(replace(v_taken::text, '-', ''), 4), 'suffixed username');
  perform tests.check((select username from public.profiles where id = v_taken_again) like 'alice\_%',
    'second suffixed username');
  perform tests.eq((select count(distinct username) from public.profiles), (select count(*) from public.profiles),
    'usernames are unique');

  -- Even when every suffix is taken, the id itself is free.
  insert into auth.users (id, email, raw_user_meta_data) values
    (gen_random_uuid(), 'z1@example.com', '{"username": "zed"}'),
    (gen_random_uuid(), 'z2@example.com', jsonb_build_object('username', 'zed_' || left(replace(v_crowded::text, '-', ''), 4))),
    (gen_random_uuid(), 'z3@example.com', jsonb_build_object('username', 'zed_' || left(replace(v_crowded::text, '-', ''), 8)));
  insert into auth.users (id, email, raw_user_meta_data) values (v_crowded, 'z4@example.com', '{"username": "zed"}');
  perform tests.eq((select username from public.profiles where id = v_crowded), v_crowded::text,
    'username when every suffix is taken');

  -- Deleting the auth user deletes the profile.
  delete from auth.users where id = v_meta;
  perform tests.eq((select count(*) from public.profiles where id = v_meta), 0::bigint, 'profile after its user is deleted');
end
$$;
