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

  -- Even when every suffix is taken (in other letters), sign-up succeeds
  -- with a random name.
  insert into auth.users (id, email, raw_user_meta_data) values
    (gen_random_uuid(), 'z1@example.com', '{"username": "zed"}'),
    (gen_random_uuid(), 'z2@example.com', jsonb_build_object('username', 'ZED_' || upper(left(replace(v_crowded::text, '-', ''), 4)))),
    (gen_random_uuid(), 'z3@example.com', jsonb_build_object('username', 'zed_' || left(replace(v_crowded::text, '-', ''), 8)));
  insert into auth.users (id, email, raw_user_meta_data) values (v_crowded, 'z4@example.com', '{"username": "Zed"}');
  perform tests.check((select username ~ '^user_[0-9a-f]{16}$' from public.profiles where id = v_crowded),
    'username when every suffix is taken');

  -- Deleting the auth user deletes the profile.
  delete from auth.users where id = v_meta;
  perform tests.eq((select count(*) from public.profiles where id = v_meta), 0::bigint, 'profile after its user is deleted');
end
$$;

-- Usernames: 3 to 32 of A-Z a-z 0-9 _ . -, unique in any letter case; a
-- sign-up's metadata is kept to them, never a reason to refuse it.
do $$
declare
  v_upper uuid := gen_random_uuid();
  v_hidden uuid := gen_random_uuid();
  v_cyrillic uuid := gen_random_uuid();
  v_short uuid := gen_random_uuid();
  v_long uuid := gen_random_uuid();
  v_long_taken uuid := gen_random_uuid();
  v_blank uuid := gen_random_uuid();
  v_all_blank uuid := gen_random_uuid();
  v_name text;
begin
  insert into auth.users (id, email, raw_user_meta_data) values
    (v_upper, 'u@example.com', '{"username": "ALICE"}'),
    (v_hidden, 'h@example.com', jsonb_build_object('username', E'ali\u200bce\u202e', 'display_name', E'Ali\u200bce\u202e\u2066')),
    (v_cyrillic, 'c@example.com', jsonb_build_object('username', E'\u0430lice')),
    (v_short, 's@example.com', '{"username": "é"}'),
    (v_long, 'l@example.com', jsonb_build_object('username', repeat('x', 40))),
    (v_long_taken, 'lt@example.com', jsonb_build_object('username', repeat('x', 33))),
    (v_blank, 'b@example.com', jsonb_build_object('display_name', E'\u3000\u2800', 'full_name', E'\u200b', 'name', ' Zoe ')),
    (v_all_blank, 'n@example.com', jsonb_build_object('username', 'nobody', 'display_name', E'\u2800', 'name', E'\u00a0'));
  perform tests.eq((select username from public.profiles where id = v_upper),
    'ALICE_' || left(replace(v_upper::text, '-', ''), 4), 'ALICE when alice exists');
  perform tests.eq((select username from public.profiles where id = v_hidden),
    'alice_' || left(replace(v_hidden::text, '-', ''), 4), 'invisible characters dropped from the username');
  perform tests.eq((select display_name from public.profiles where id = v_hidden), 'Alice',
    'invisible and bidi characters dropped from the display name');
  perform tests.eq((select display_name from public.profiles where id = v_blank), 'Zoe',
    'the first name of the metadata that is not blank once cleaned');
  perform tests.eq((select display_name from public.profiles where id = v_all_blank), 'nobody',
    'the username when every name of the metadata is blank');
  perform tests.eq((select username from public.profiles where id = v_cyrillic), 'lice', 'a Cyrillic look-alike dropped');
  perform tests.eq((select username from public.profiles where id = v_short),
    'user_' || left(replace(v_short::text, '-', ''), 8), 'too short once cleaned');
  perform tests.eq((select username from public.profiles where id = v_long), repeat('x', 32), 'cut to 32 characters');
  perform tests.eq((select username from public.profiles where id = v_long_taken),
    repeat('x', 27) || '_' || left(replace(v_long_taken::text, '-', ''), 4), 'cut to make room for a suffix');

  -- The owner's own writes through PostgREST meet the same rules.
  perform tests.act_as(tests.bob());
  foreach v_name in array array['ALICE', 'Alice', 'aLiCe'] loop
    perform tests.raises(format('update public.profiles set username = %L where id = %L', v_name, tests.bob()),
      '23505', 'bob renames himself ' || v_name);
  end loop;
  foreach v_name in array array[E'ali\u200bce', E'\u0430lice', E'alice\u202e', 'al', repeat('b', 33), 'bob bob', 'bob@x', ''] loop
    perform tests.raises(format('update public.profiles set username = %L where id = %L', v_name, tests.bob()),
      '23514', 'bob renames himself ' || v_name);
  end loop;
  foreach v_name in array array[E'Bob\u200b', E'Bob\u202e', E'\u2066Bob', E'B\u00adob', E'Bob\ufeff', E'Bob\u0007', E'Bob\n', E'\u3164',
                                E'\u2800', E'Bob\u2800'] loop
    perform tests.raises(format('update public.profiles set display_name = %L where id = %L', v_name, tests.bob()),
      '23514', 'bob calls himself ' || v_name);
  end loop;
  -- A blank display name names nobody; none at all is fine.
  foreach v_name in array array['', ' ', E'\u00a0\u3000', E'\u2003'] loop
    perform tests.raises(format('update public.profiles set display_name = %L where id = %L', v_name, tests.bob()),
      '23514', format('bob calls himself %L', v_name));
  end loop;
  perform tests.eq(tests.error_of(format('update public.profiles set display_name = null where id = %L', tests.bob())), null,
    'no display name');
  perform tests.eq(tests.error_of(format(
    'update public.profiles set username = ''Bob.the-2nd_'', display_name = %L where id = %L',
    E'Bob \u05d1 👍\ufe0f Zoë', tests.bob())), null, 'a username of every allowed sign, a display name in any script');
  perform tests.reset();
  perform tests.eq((select username from public.profiles where id = tests.bob()), 'Bob.the-2nd_', 'the new username');
  perform tests.check((select indexdef like '%UNIQUE%lower(username)%' from pg_indexes
    where schemaname = 'public' and indexname = 'profiles_username_lower_key'), 'the unique index on usernames');
end
$$;
