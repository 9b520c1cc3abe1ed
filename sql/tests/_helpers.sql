-- Helpers for the SQL tests. The runner executes this file first, in the same
-- transaction as each test file (BEGIN; _helpers.sql; <test>.sql; ROLLBACK;),
-- as a superuser, so everything here disappears with the rollback.
--
-- A failing check raises an exception whose message starts with "FAILED:"
-- and says what was expected.

create schema tests;

-- The helpers run as whichever role a test is acting as (functions are
-- executable by PUBLIC by default; the schema needs USAGE).
grant usage on schema tests to anon, authenticated, service_role;

-- The seeded users (sql/seed.sql).
create function tests.alice() returns uuid language sql immutable
  as $$ select '00000000-0000-4000-8000-00000000a11c'::uuid $$;
create function tests.bob() returns uuid language sql immutable
  as $$ select '00000000-0000-4000-8000-000000000b0b'::uuid $$;
create function tests.carol() returns uuid language sql immutable
  as $$ select '00000000-0000-4000-8000-0000000ca201'::uuid $$;
create function tests.dave() returns uuid language sql immutable
  as $$ select '00000000-0000-4000-8000-00000000da5e'::uuid $$;

-- ---------------------------------------------------------------------------
-- Acting as an API caller, the way PostgREST does: switch role and set the
-- JWT claims for the rest of the transaction.
-- ---------------------------------------------------------------------------
-- The claims of a fresh token (exp an hour ahead), with p_extra's on top.
create function tests.act_as(p_user_id uuid, p_extra jsonb default '{}') returns void language plpgsql as $$
begin
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claim.sub', '', true);
  perform set_config('request.jwt.claims',
    (jsonb_build_object('sub', p_user_id, 'role', 'authenticated', 'aud', 'authenticated',
                        'exp', floor(extract(epoch from now())) + 3600) || p_extra)::text, true);
end;
$$;

create function tests.act_as_anon() returns void language plpgsql as $$
begin
  perform set_config('role', 'anon', true);
  perform set_config('request.jwt.claim.sub', '', true);
  perform set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
end;
$$;

create function tests.act_as_service() returns void language plpgsql as $$
begin
  perform set_config('role', 'service_role', true);
  perform set_config('request.jwt.claim.sub', '', true);
  perform set_config('request.jwt.claims', json_build_object('role', 'service_role')::text, true);
end;
$$;

-- Back to the superuser the runner connected as, with no claims.
create function tests.reset() returns void language plpgsql as $$
begin
  execute 'set local role none';
  perform set_config('request.jwt.claim.sub', '', true);
  perform set_config('request.jwt.claims', '', true);
end;
$$;

-- ---------------------------------------------------------------------------
-- Assertions
-- ---------------------------------------------------------------------------
create function tests.check(p_ok boolean, p_what text) returns void language plpgsql as $$
begin
  if p_ok is not true then
    raise exception 'FAILED: %', p_what;
  end if;
end;
$$;

create function tests.eq(p_actual anyelement, p_expected anyelement, p_what text) returns void language plpgsql as $$
begin
  if p_actual is distinct from p_expected then
    raise exception 'FAILED: %: expected %, got %', p_what, p_expected, p_actual;
  end if;
end;
$$;

-- The error a statement raises, as {"sqlstate","message","detail"}, or null
-- when it succeeds. Runs as the current role; a successful statement's
-- effects are kept.
create function tests.error_of(p_sql text) returns jsonb language plpgsql as $$
declare
  v_state text;
  v_message text;
  v_detail text;
begin
  execute p_sql;
  return null;
exception
  when others then
    get stacked diagnostics
      v_state = returned_sqlstate,
      v_message = message_text,
      v_detail = pg_exception_detail;
    return jsonb_build_object('sqlstate', v_state, 'message', v_message, 'detail', nullif(v_detail, ''));
end;
$$;

-- Asserts that a statement fails with an error whose message (the API error
-- code, for RPCs) or SQLSTATE is p_expected.
create function tests.raises(p_sql text, p_expected text, p_what text) returns void language plpgsql as $$
declare
  v_error jsonb := tests.error_of(p_sql);
begin
  if v_error is null then
    raise exception 'FAILED: %: expected error %, but it succeeded', p_what, p_expected;
  end if;
  if p_expected is distinct from v_error ->> 'message' and p_expected is distinct from v_error ->> 'sqlstate' then
    raise exception 'FAILED: %: expected error %, got % (%)', p_what, p_expected, v_error ->> 'message', v_error ->> 'sqlstate';
  end if;
end;
$$;

-- Asserts that the current role is refused a statement (insufficient privilege,
-- which is also what a row-level security refusal of a write raises).
create function tests.denied(p_sql text, p_what text) returns void language plpgsql as $$
begin
  perform tests.raises(p_sql, '42501', p_what);
end;
$$;

-- A JSON array's elements in a canonical order, to compare arrays as sets.
create function tests.sorted(p_array jsonb) returns jsonb language sql immutable as $$
  select coalesce(jsonb_agg(e order by e::text), '[]'::jsonb) from jsonb_array_elements(p_array) as e
$$;

-- Asserts that the current role is refused a write to a table by the table's
-- own protection (its grants or its policies), not by some side effect such
-- as a function the statement happens to call.
create function tests.write_denied(p_sql text, p_table text, p_what text) returns void language plpgsql as $$
declare
  v_error jsonb := tests.error_of(p_sql);
begin
  if v_error is null then
    raise exception 'FAILED: %: expected permission denied on %, but it succeeded', p_what, p_table;
  end if;
  if v_error ->> 'sqlstate' <> '42501'
     or (v_error ->> 'message' not like format('permission denied for table %s%%', p_table)
         and v_error ->> 'message' not like format('new row violates row-level security policy for table "%s"%%', p_table)) then
    raise exception 'FAILED: %: expected permission denied on %, got % (%)', p_what, p_table, v_error ->> 'message', v_error ->> 'sqlstate';
  end if;
end;
$$;

-- How many rows a query returns for the current role.
create function tests.count(p_sql text) returns bigint language plpgsql as $$
declare
  v_count bigint;
begin
  execute format('select count(*) from (%s) q', p_sql) into v_count;
  return v_count;
end;
$$;

-- ---------------------------------------------------------------------------
-- Fixtures (call as the superuser, i.e. after tests.reset())
-- ---------------------------------------------------------------------------

-- A group or room: the owner plus members, with its conversation.created
-- event as seq 1, the way a creating RPC leaves it.
-- Without a name, a room gets a unique one (room names are unique).
create function tests.make_conversation(p_kind text, p_owner uuid, p_members uuid[], p_name text default null)
returns uuid language plpgsql as $$
declare
  v_id uuid;
begin
  insert into public.conversations (kind, name, created_by, last_seq)
  values (p_kind,
          coalesce(p_name, case when p_kind = 'room' then 'room ' || gen_random_uuid() else 'test' end),
          p_owner, 1)
  returning id into v_id;

  insert into public.participants (conversation_id, user_id, role)
  values (v_id, p_owner, 'owner');
  insert into public.participants (conversation_id, user_id, role)
  select v_id, m, 'member' from unnest(p_members) as m where m <> p_owner;

  insert into public.conversation_events (conversation_id, seq, type, actor_id, payload)
  values (v_id, 1, 'conversation.created', p_owner, public.conversation_json(v_id));
  return v_id;
end;
$$;

-- Marks members as having taken part in a conversation, as their first
-- send_message does, without the messages: what makes them contacts
-- (presence_visible) in fixtures whose seqs and counts must stay as they are.
create function tests.take_part(p_conversation_id uuid, p_users uuid[])
returns void language sql as $$
  update public.participants
     set first_sent_at = coalesce(first_sent_at, now())
   where conversation_id = p_conversation_id
     and user_id = any (p_users)
$$;

-- Sends a text message through send_message and returns its Message JSON.
create function tests.send(p_sender uuid, p_conversation_id uuid, p_body text, p_client_msg_id text default null)
returns jsonb language sql as $$
  select public.send_message(
    p_sender, p_conversation_id, coalesce(p_client_msg_id, gen_random_uuid()::text),
    'text', p_body, null, null
  ) -> 'result' -> 'message'
$$;

-- Registers a WebSocket connection: live for an hour, or with a token that
-- expired a minute ago (still registered, but no longer live).
create function tests.connect(p_connection_id text, p_user_id uuid, p_live boolean default true)
returns void language plpgsql as $$
begin
  perform public.register_connection(p_connection_id, p_user_id,
    now() + case when p_live then interval '1 hour' else interval '-1 minute' end);
end;
$$;

-- The result of a write RPC ({"result", "deliveries"}) without its deliveries.
create function tests.result(p_response jsonb) returns jsonb language sql immutable as $$
  select p_response -> 'result'
$$;

-- The deliveries of a write RPC's response whose event has the given type.
create function tests.deliveries(p_response jsonb, p_type text) returns jsonb language sql immutable as $$
  select coalesce(jsonb_agg(d order by ordinality), '[]'::jsonb)
  from jsonb_array_elements(p_response -> 'deliveries') with ordinality as t (d, ordinality)
  where d -> 'event' ->> 'type' = p_type
$$;

-- The connection ids a list of recipients addresses, sorted.
create function tests.connection_ids(p_recipients jsonb) returns text[] language sql immutable as $$
  select coalesce(array_agg(r ->> 'connection_id' order by r ->> 'connection_id'), '{}'::text[])
  from jsonb_array_elements(coalesce(p_recipients, '[]'::jsonb)) as r
$$;

-- The connection ids the deliveries of one event type go to, sorted (each
-- once per delivery: a connection listed twice shows up twice).
create function tests.recipients(p_response jsonb, p_type text) returns text[] language sql immutable as $$
  select coalesce(array_agg(r ->> 'connection_id' order by r ->> 'connection_id'), '{}'::text[])
  from jsonb_array_elements(tests.deliveries(p_response, p_type)) as d,
       jsonb_array_elements(d -> 'recipients') as r
$$;

-- The types of a conversation's durable events, in seq order.
create function tests.event_types(p_conversation_id uuid) returns text[] language sql stable as $$
  select coalesce(array_agg(type order by seq), '{}'::text[])
  from public.conversation_events
  where conversation_id = p_conversation_id
$$;

-- Asserts that a conversation's events are numbered 1..last_seq, without gaps.
create function tests.check_gap_free(p_conversation_id uuid, p_what text) returns void language plpgsql as $$
begin
  perform tests.eq(
    (select coalesce(array_agg(seq order by seq), '{}'::bigint[]) from public.conversation_events
      where conversation_id = p_conversation_id),
    (select coalesce(array_agg(g order by g), '{}'::bigint[])
      from generate_series(1::bigint, (select last_seq from public.conversations where id = p_conversation_id)) g),
    p_what || ': event seqs are 1..last_seq');
end;
$$;

-- A message id from a Message JSON (what tests.send returns).
create function tests.id(p_json jsonb) returns uuid language sql immutable as $$
  select (p_json ->> 'id')::uuid
$$;
