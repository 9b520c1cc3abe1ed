-- Who may execute which function and touch which table, checked both from the
-- catalog and by actually trying as each API role.

-- Every table in public has row level security on (a new table without it
-- would be wide open through Supabase's default grants).
do $$
declare
  r record;
begin
  for r in
    select c.relname, c.relrowsecurity
    from pg_class c
    where c.relnamespace = 'public'::regnamespace
      and c.relkind in ('r', 'p')
  loop
    perform tests.check(r.relrowsecurity, format('row level security is enabled on public.%I', r.relname));
  end loop;
end
$$;

-- Every SECURITY DEFINER function in public pins its search_path.
do $$
declare
  r record;
begin
  for r in
    select p.oid::regprocedure::text as sig, p.proconfig
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.prosecdef
  loop
    perform tests.check(
      exists (select 1 from unnest(r.proconfig) as s where s like 'search_path=%'),
      format('SECURITY DEFINER function %s sets search_path', r.sig));
  end loop;
end
$$;

-- anon may execute health_stats and nothing else in public.
do $$
declare
  r record;
begin
  for r in
    select p.oid, p.proname, p.oid::regprocedure::text as sig
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
  loop
    perform tests.eq(
      has_function_privilege('anon', r.oid, 'execute'),
      r.proname = 'health_stats',
      format('anon may execute %s', r.sig));
  end loop;
end
$$;

-- The execute matrix of the RPCs and the internal helpers. Every function in
-- public must be in exactly one list, so a new one cannot go unclassified.
create temporary table function_class (sig text primary key, class text not null) on commit drop;

insert into function_class (sig, class)
select sig, 'internal' from unnest(array[
  'public.register_connection(text,uuid,timestamp with time zone,integer)',
  'public.unregister_connection(text)',
  'public.touch_connection(text)',
  'public.remove_connections(text[])',
  'public.sweep_candidates(integer,integer)',
  'public.sweep_connections(text[],text[])',
  'public.send_message(uuid,uuid,text,text,text,jsonb,uuid,integer,integer)',
  'public.send_typing(uuid,uuid,boolean,integer,integer)',
  'public.open_direct_conversation(uuid,uuid,text,text,integer,integer)',
  'public.create_conversation(uuid,text,text,uuid[],integer,integer)',
  'public.update_conversation(uuid,uuid,text,boolean,boolean,integer,integer)',
  'public.add_members(uuid,uuid,uuid[],integer,integer)',
  'public.join_room(uuid,uuid,integer,integer)',
  'public.leave_conversation(uuid,uuid)',
  'public.mark_read(uuid,uuid,bigint)',
  'public.edit_message(uuid,uuid,text,integer,integer)',
  'public.delete_message(uuid,uuid)'
]) as sig
union all
select sig, 'user_facing' from unnest(array[
  'public.list_messages(uuid,bigint,bigint,integer)',
  'public.get_me()',
  'public.search_users(text,integer)',
  'public.get_presence(uuid[])',
  'public.get_profiles(uuid[])',
  'public.list_rooms(integer,text)',
  'public.list_conversations(integer,text,boolean)',
  'public.get_conversation(uuid)',
  'public.list_events(uuid,bigint,integer)',
  'public.conversation_stats(uuid)',
  'public.conversation_connections(uuid)',
  'public.unread_counts()',
  'public.search_messages(text,uuid,integer,integer)',
  'public.block_user(uuid)',
  'public.unblock_user(uuid)',
  'public.list_blocks()'
]) as sig
union all
select 'public.health_stats()', 'public'
union all
select sig, 'helper' from unnest(array[
  'public.api_error(text,text)',
  'public.api_error(text,text,jsonb)',
  'public.take_token(uuid,text,integer,integer)',
  'public.connection_is_live(timestamp with time zone)',
  'public.connection_is_settled(timestamp with time zone)',
  'public.forget_connections(text[])',
  'public.went_offline(uuid)',
  'public.message_json(public.messages)',
  'public.conversation_json(uuid)',
  'public.live_recipients(uuid,uuid)',
  'public.without_blocked(jsonb,uuid)',
  'public.refuse_blocked_members(uuid,uuid[])',
  'public.refuse_if_blocked(uuid)',
  'public.next_conversation_seq(uuid)',
  'public.append_conversation_event(uuid,text,uuid,uuid,jsonb)',
  'public.validated_attachment(text,jsonb)',
  'public.handle_new_auth_user()',
  'public.check_conversation_fields()',
  'public.check_message_fields()',
  'public.raise_check_violation(text,text)',
  'public.event_envelope(text,uuid,bigint,jsonb)',
  'public.delivery(jsonb,jsonb)',
  'public.user_recipients(uuid[])',
  'public.are_contacts(uuid,uuid)',
  'public.blocked_between(uuid,uuid)',
  'public.blocked_with(uuid)',
  'public.presence_visible(uuid,uuid)',
  'public.is_online(uuid)',
  'public.contact_recipients(uuid)',
  'public.profile_json(public.profiles,uuid)',
  'public.public_profile_json(public.profiles)',
  'public.member_joined_data(public.participants,uuid)',
  'public.check_user_ids(uuid[])',
  'public.unread_count(uuid,uuid,bigint)',
  'public.me_json(public.participants)',
  'public.require_caller()',
  'public.require_participant(uuid,uuid)',
  'public.lock_as_participant(uuid,uuid)',
  'public.lock_message_for_change(uuid,uuid)',
  'public.record_message_change(text,uuid,public.messages)',
  'public.validated_conversation_name(text)',
  'public.validated_body(text,text)',
  'public.validated_query_text(text,integer)',
  'public.has_control(text)',
  'public.has_bidi_control(text)',
  'public.encode_cursor(timestamp with time zone,uuid)',
  'public.decode_cursor(text)',
  'public.cursor_page(text,jsonb,integer)'
]) as sig
union all
-- The RLS helpers must be callable where policies evaluate them.
select 'public.is_participant(uuid)', 'policy'
union all
select 'public.can_see_profile(uuid)', 'policy'
union all
select 'public.caller_id()', 'policy'
union all
-- Check constraints on profiles, which signed-in users update: callable by
-- them as the policies' helpers are (is_blank, with trim_blank, also checks
-- messages, which service_role writes).
select 'public.has_invisible(text)', 'policy'
union all
select 'public.strip_invisible(text)', 'policy'
union all
select 'public.is_blank(text)', 'policy'
union all
select 'public.trim_blank(text)', 'policy';

-- Push notifications (65_push.sql).
insert into function_class (sig, class) values
  ('public.save_push_subscription(text,text,text)', 'user_facing'),
  ('public.delete_push_subscription(text)', 'user_facing'),
  ('public.notification_targets(uuid,uuid[],text)', 'internal'),
  ('public.remove_push_subscriptions(text[])', 'internal'),
  ('public.base64url_bytes(text)', 'helper'),
  ('public.valid_push_endpoint(text)', 'helper'),
  ('public.notification_request(uuid,uuid,uuid,jsonb)', 'helper');

-- Delivery receipts (60_read_state.sql).
insert into function_class (sig, class) values
  ('public.mark_delivered(uuid,uuid,bigint)', 'internal'),
  ('public.lock_own_watermarks(uuid,uuid,bigint)', 'helper'),
  ('public.receipt_recipients(text,uuid,uuid,uuid[])', 'helper'),
  ('public.receipts_seen_by(jsonb,uuid)', 'helper');

do $$
declare
  r record;
begin
  -- Every function is classified, and every classified function exists.
  for r in
    select p.oid, p.oid::regprocedure::text as sig
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
  loop
    perform tests.check(exists (select 1 from function_class f where to_regprocedure(f.sig) = r.oid),
      format('%s is classified in grants.sql', r.sig));
  end loop;
  for r in select f.sig from function_class f loop
    perform tests.check(to_regprocedure(r.sig) is not null, format('%s exists', r.sig));
  end loop;

  for r in select f.sig, f.class from function_class f loop
    perform tests.eq(has_function_privilege('anon', r.sig, 'execute'), r.class = 'public',
      'anon may execute ' || r.sig);
    perform tests.eq(has_function_privilege('authenticated', r.sig, 'execute'),
      r.class in ('user_facing', 'public', 'policy'), 'authenticated may execute ' || r.sig);
    perform tests.eq(has_function_privilege('service_role', r.sig, 'execute'),
      r.class in ('internal', 'user_facing', 'public', 'policy'), 'service_role may execute ' || r.sig);
    perform tests.eq(has_function_privilege('public', r.sig, 'execute'), false, 'PUBLIC may execute ' || r.sig);
    if r.class in ('internal', 'user_facing', 'public') then
      perform tests.check((select p.prosecdef from pg_proc p where p.oid = r.sig::regprocedure), r.sig || ' is SECURITY DEFINER');
      perform tests.eq((select p.prorettype::regtype from pg_proc p where p.oid = r.sig::regprocedure), 'jsonb'::regtype,
        r.sig || ' returns');
    end if;
    -- Helpers run inside the RPCs with their owner's rights: none of them
    -- may elevate anything on its own.
    if r.class = 'helper' and r.sig <> 'public.handle_new_auth_user()' then
      perform tests.eq((select p.prosecdef from pg_proc p where p.oid = r.sig::regprocedure), false,
        r.sig || ' is SECURITY DEFINER');
    end if;
  end loop;
end
$$;

-- Every function pins its search_path, not only the SECURITY DEFINER ones:
-- the helpers run inside them. Except the helpers written to be inlined into
-- the queries that ask them of each row (a SET clause prevents inlining),
-- whose bodies name nothing outside pg_catalog, and that schema-qualified
-- (connections.sql shows both).
do $$
declare
  r record;
  c_inlined constant regprocedure[] := array['public.connection_is_live(timestamptz)'::regprocedure];
begin
  for r in
    select p.oid, p.oid::regprocedure::text as sig, p.proconfig, p.prosecdef
    from pg_proc p
    where p.pronamespace = 'public'::regnamespace
  loop
    if r.oid = any (c_inlined::oid[]) then
      perform tests.eq(r.proconfig, null::text[], r.sig || ' has no SET clause, so it can be inlined');
      perform tests.eq(r.prosecdef, false, r.sig || ' is not SECURITY DEFINER, so it can be inlined');
      continue;
    end if;
    perform tests.check(
      exists (select 1 from unnest(r.proconfig) as s where s = 'search_path=""'),
      format('function %s sets an empty search_path', r.sig));
  end loop;
end
$$;

-- Trying it: signed-in users and anon are refused every internal RPC and
-- every helper (with arguments that would otherwise succeed or be refused
-- by the function itself).
do $$
declare
  v_calls text[] := array[
    format('select public.register_connection(%L, %L, null)', 'conn-x', tests.alice()),
    format('select public.unregister_connection(%L)', 'conn-x'),
    format('select public.touch_connection(%L)', 'conn-x'),
    'select public.remove_connections(array[''conn-x''])',
    format('select public.send_message(%L, gen_random_uuid(), %L, %L, %L, null, null)', tests.alice(), 'c1', 'text', 'hi'),
    format('select public.send_typing(%L, gen_random_uuid())', tests.alice()),
    format('select public.open_direct_conversation(%L, %L)', tests.alice(), tests.bob()),
    format('select public.create_conversation(%L, %L, %L)', tests.alice(), 'group', 'mine'),
    format('select public.update_conversation(%L, gen_random_uuid(), %L)', tests.alice(), 'renamed'),
    format('select public.add_members(%L, gen_random_uuid(), array[%L]::uuid[])', tests.alice(), tests.bob()),
    format('select public.join_room(%L, gen_random_uuid())', tests.alice()),
    format('select public.leave_conversation(%L, gen_random_uuid())', tests.alice()),
    format('select public.mark_read(%L, gen_random_uuid())', tests.alice()),
    format('select public.edit_message(%L, gen_random_uuid(), %L)', tests.alice(), 'x'),
    format('select public.delete_message(%L, gen_random_uuid())', tests.alice()),
    format('select public.append_conversation_event(gen_random_uuid(), %L, null, null, null)', 'x'),
    'select public.next_conversation_seq(gen_random_uuid())',
    'select public.conversation_json(gen_random_uuid())',
    format('select public.contact_recipients(%L)', tests.alice()),
    format('select public.user_recipients(array[%L]::uuid[])', tests.alice()),
    format('select public.is_online(%L)', tests.alice()),
    format('select public.are_contacts(%L, %L)', tests.alice(), tests.bob()),
    format('select public.blocked_between(%L, %L)', tests.alice(), tests.bob()),
    format('select public.blocked_with(%L)', tests.alice()),
    format('select public.presence_visible(%L, %L)', tests.alice(), tests.bob()),
    format('select public.profile_json(p, %L) from public.profiles p', tests.alice()),
    'select public.public_profile_json(p) from public.profiles p',
    format('select public.check_user_ids(array[%L]::uuid[])', tests.alice()),
    format('select public.unread_count(gen_random_uuid(), %L, 0)', tests.alice()),
    format('select public.require_participant(gen_random_uuid(), %L)', tests.alice()),
    format('select public.lock_as_participant(gen_random_uuid(), %L)', tests.alice()),
    format('select public.lock_message_for_change(%L, gen_random_uuid())', tests.alice()),
    format('select public.record_message_change(''message.updated'', %L, null::public.messages)', tests.alice()),
    'select public.require_caller()',
    'select public.event_envelope(''x'', null, null, null)',
    'select public.delivery(''{}'', ''[]'')',
    'select public.validated_conversation_name(''x'')',
    'select public.validated_body(''text'', ''x'')',
    'select public.validated_query_text(''x'', 1)',
    'select public.cursor_page(''rooms'', ''[]'', 1)',
    'select public.encode_cursor(now(), gen_random_uuid())',
    'select public.decode_cursor(''x'')'
  ];
  v_call text;
begin
  foreach v_call in array v_calls loop
    perform tests.act_as(tests.alice());
    perform tests.denied(v_call, 'authenticated runs: ' || v_call);
    perform tests.act_as_anon();
    perform tests.denied(v_call, 'anon runs: ' || v_call);
  end loop;
  perform tests.reset();
end
$$;

-- anon is refused every user-facing RPC but may ask for health.
do $$
declare
  v_calls text[] := array[
    'select public.list_messages(gen_random_uuid())',
    'select public.get_me()',
    'select public.search_users(''a'')',
    format('select public.get_presence(array[%L]::uuid[])', tests.alice()),
    format('select public.get_profiles(array[%L]::uuid[])', tests.alice()),
    'select public.list_rooms()',
    'select public.list_conversations()',
    'select public.get_conversation(gen_random_uuid())',
    'select public.list_events(gen_random_uuid())',
    'select public.conversation_stats(gen_random_uuid())',
    'select public.conversation_connections(gen_random_uuid())',
    'select public.unread_counts()',
    'select public.search_messages(''hello'')'
  ];
  v_call text;
begin
  perform tests.act_as_anon();
  foreach v_call in array v_calls loop
    perform tests.denied(v_call, 'anon runs: ' || v_call);
  end loop;
  perform tests.eq(tests.error_of('select public.health_stats()'), null, 'anon runs health_stats');
  perform tests.reset();
end
$$;

-- Table privileges: anon has none; authenticated may only read (some
-- columns of profiles and participants, and update its profile's editable
-- columns); connections is closed to both.
do $$
declare
  t text;
  p text;
begin
  foreach t in array array['profiles', 'conversations', 'participants', 'messages', 'conversation_events', 'connections'] loop
    foreach p in array array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger'] loop
      perform tests.eq(has_table_privilege('anon', 'public.' || t, p), false, format('anon has %s on %s', p, t));
      if p <> 'select' then
        perform tests.eq(has_table_privilege('authenticated', 'public.' || t, p), false,
          format('authenticated has table-wide %s on %s', p, t));
      end if;
    end loop;
    foreach p in array array['select', 'insert', 'update', 'references'] loop
      perform tests.eq(has_any_column_privilege('anon', 'public.' || t, p), false, format('anon can %s a column of %s', p, t));
    end loop;
    perform tests.eq(has_any_column_privilege('authenticated', 'public.' || t, 'insert'), false,
      format('authenticated can insert a column of %s', t));
    perform tests.eq(has_table_privilege('authenticated', 'public.' || t, 'select'),
      t in ('conversations', 'messages', 'conversation_events'),
      format('authenticated has table-wide select on %s', t));
    perform tests.eq(has_any_column_privilege('authenticated', 'public.' || t, 'select'), t <> 'connections',
      format('authenticated can select a column of %s', t));
    perform tests.eq(has_any_column_privilege('authenticated', 'public.' || t, 'update'), t = 'profiles',
      format('authenticated can update a column of %s', t));
    perform tests.eq(has_table_privilege('service_role', 'public.' || t, 'select, insert, update, delete'), true,
      format('service_role works on %s', t));
  end loop;

  perform tests.eq(has_column_privilege('authenticated', 'public.profiles', 'display_name', 'update'), true,
    'authenticated can update profiles.display_name');
  perform tests.eq(has_column_privilege('authenticated', 'public.profiles', 'last_seen_at', 'update'), false,
    'authenticated can update profiles.last_seen_at');
  perform tests.eq(has_column_privilege('authenticated', 'public.profiles', 'id', 'update'), false,
    'authenticated can update profiles.id');

  -- connections has no policy for anyone: only service_role (bypassing RLS) reads it.
  perform tests.eq((select count(*) from pg_policies where schemaname = 'public' and tablename = 'connections'), 0::bigint,
    'policies on connections');
end
$$;

-- The columns signed-in users may read: presence and a member's own
-- settings and read position are only reachable through the RPCs.
do $$
declare
  r record;
begin
  for r in
    select c.table_name, c.column_name,
           (c.table_name, c.column_name) not in (
             ('profiles', 'last_seen_at'), ('participants', 'archived'), ('participants', 'muted'),
             ('participants', 'last_read_seq'), ('participants', 'first_sent_at'),
             ('participants', 'last_delivered_seq')
           ) and c.table_name <> 'connections' as readable
    from information_schema.columns c
    where c.table_schema = 'public'
      and c.table_name in ('profiles', 'conversations', 'participants', 'messages', 'conversation_events', 'connections')
  loop
    perform tests.eq(has_column_privilege('authenticated', format('public.%I', r.table_name), r.column_name, 'select'),
      r.readable, format('authenticated can select %s.%s', r.table_name, r.column_name));
  end loop;
end
$$;
