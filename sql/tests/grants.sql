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

-- The execute matrix of the RPCs and the internal helpers.
do $$
declare
  v_internal text[] := array[
    'public.register_connection(text,uuid,timestamp with time zone)',
    'public.unregister_connection(text)',
    'public.touch_connection(text)',
    'public.remove_connections(text[])',
    'public.send_message(uuid,uuid,text,text,text,jsonb,uuid)',
    'public.typing_recipients(uuid,uuid)'
  ];
  v_user_facing text[] := array[
    'public.open_direct_conversation(uuid,text,text)',
    'public.list_messages(uuid,bigint,bigint,integer)',
    'public.health_stats()'
  ];
  v_helpers text[] := array[
    'public.api_error(text,text)',
    'public.connection_is_live(timestamp with time zone)',
    'public.message_json(public.messages)',
    'public.conversation_json(uuid)',
    'public.live_recipients(uuid,uuid)',
    'public.next_conversation_seq(uuid)',
    'public.append_conversation_event(uuid,text,uuid,uuid,jsonb)',
    'public.validated_attachment(text,jsonb)',
    'public.handle_new_auth_user()'
  ];
  f text;
begin
  foreach f in array v_internal loop
    perform tests.eq(has_function_privilege('anon', f, 'execute'), false, 'anon may execute ' || f);
    perform tests.eq(has_function_privilege('authenticated', f, 'execute'), false, 'authenticated may execute ' || f);
    perform tests.eq(has_function_privilege('service_role', f, 'execute'), true, 'service_role may execute ' || f);
    perform tests.check((select p.prosecdef from pg_proc p where p.oid = f::regprocedure), f || ' is SECURITY DEFINER');
  end loop;

  foreach f in array v_user_facing loop
    perform tests.eq(has_function_privilege('authenticated', f, 'execute'), true, 'authenticated may execute ' || f);
    perform tests.eq(has_function_privilege('service_role', f, 'execute'), true, 'service_role may execute ' || f);
  end loop;

  foreach f in array v_helpers loop
    perform tests.eq(has_function_privilege('anon', f, 'execute'), false, 'anon may execute ' || f);
    perform tests.eq(has_function_privilege('authenticated', f, 'execute'), false, 'authenticated may execute ' || f);
    perform tests.eq(has_function_privilege('service_role', f, 'execute'), false, 'service_role may execute ' || f);
  end loop;

  -- Used by a check constraint on messages, so whoever writes messages
  -- (service_role) needs it; signed-in users never write messages.
  perform tests.eq(has_function_privilege('authenticated', 'public.is_blank(text)', 'execute'), false,
    'authenticated may execute public.is_blank(text)');

  -- The RLS helper must be callable where policies evaluate it.
  perform tests.eq(has_function_privilege('authenticated', 'public.is_participant(uuid)', 'execute'), true,
    'authenticated may execute public.is_participant(uuid)');
end
$$;

-- Trying it: signed-in users and anon are refused every internal RPC.
do $$
declare
  v_calls text[] := array[
    format('select public.register_connection(%L, %L, null)', 'conn-x', tests.alice()),
    format('select public.unregister_connection(%L)', 'conn-x'),
    format('select public.touch_connection(%L)', 'conn-x'),
    'select public.remove_connections(array[''conn-x''])',
    format('select public.send_message(%L, gen_random_uuid(), %L, %L, %L, null, null)', tests.alice(), 'c1', 'text', 'hi'),
    format('select public.typing_recipients(%L, gen_random_uuid())', tests.alice()),
    format('select public.append_conversation_event(gen_random_uuid(), %L, null, null, null)', 'x'),
    'select public.next_conversation_seq(gen_random_uuid())',
    'select public.conversation_json(gen_random_uuid())'
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

-- anon is refused the user-facing RPCs but may ask for health.
do $$
begin
  perform tests.act_as_anon();
  perform tests.denied(format('select public.open_direct_conversation(%L)', tests.bob()),
    'anon runs open_direct_conversation');
  perform tests.denied('select public.list_messages(gen_random_uuid())',
    'anon runs list_messages');
  perform tests.eq(tests.error_of('select public.health_stats()'), null, 'anon runs health_stats');
  perform tests.reset();
end
$$;

-- Table privileges: anon has none; authenticated may only read (and update
-- its profile's editable columns); connections is closed to both.
do $$
declare
  t text;
  p text;
begin
  foreach t in array array['profiles', 'conversations', 'participants', 'messages', 'conversation_events', 'connections'] loop
    foreach p in array array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger'] loop
      perform tests.eq(has_table_privilege('anon', 'public.' || t, p), false, format('anon has %s on %s', p, t));
      perform tests.eq(has_any_column_privilege('anon', 'public.' || t, 'select'), false, format('anon can select a column of %s', t));
      if p <> 'select' then
        perform tests.eq(has_table_privilege('authenticated', 'public.' || t, p), false,
          format('authenticated has table-wide %s on %s', p, t));
      end if;
    end loop;
    perform tests.eq(has_table_privilege('authenticated', 'public.' || t, 'select'), t <> 'connections',
      format('authenticated has select on %s', t));
    perform tests.eq(has_any_column_privilege('authenticated', 'public.' || t, 'update'), t = 'profiles',
      format('authenticated can update a column of %s', t));
  end loop;

  perform tests.eq(has_any_column_privilege('authenticated', 'public.connections', 'select'), false,
    'authenticated can select a column of connections');
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
