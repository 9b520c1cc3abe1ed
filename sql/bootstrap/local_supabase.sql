-- What a Supabase project already provides, recreated for a plain Postgres.
--
-- Apply this ONLY outside Supabase (the local stack, CI, scratch databases),
-- before the migrations. It is idempotent: roles are cluster-wide, so running
-- it again for a second database on the same server must not fail.
-- Only the pieces the migrations and PostgREST rely on are recreated.

-- Roles PostgREST switches to. NOINHERIT matches Supabase: privileges come
-- from SET ROLE, not from membership. The runner sets authenticator's password.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator;
  end if;
end
$$;

-- Re-assert the attributes in case a role existed with different ones.
alter role anon nologin noinherit;
alter role authenticated nologin noinherit;
alter role service_role nologin noinherit bypassrls;
alter role authenticator login noinherit;

-- PostgREST logs in as authenticator and switches to the role a JWT names.
do $$
declare
  v_role text;
begin
  foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_has_role('authenticator', v_role, 'member') then
      execute format('grant %I to authenticator', v_role);
    end if;
  end loop;
end
$$;

-- Supabase Auth's schema: only the columns this project reads.
create schema if not exists auth;

create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  raw_user_meta_data jsonb default '{}'::jsonb,
  created_at timestamptz default now()
);

-- The claim accessors, defined as Supabase defines them: PostgREST sets
-- request.jwt.claims (newer) or request.jwt.claim.* (older); either works.
create or replace function auth.uid()
returns uuid
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role()
returns text
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.jwt()
returns jsonb
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid(), auth.role(), auth.jwt()
  to anon, authenticated, service_role;

-- Supabase's defaults on schema public: every new table, sequence and function
-- is fully granted to the API roles, so RLS and explicit revokes in the
-- migrations are what protect data. Reproducing this locally keeps local
-- behaviour as permissive as production, so the SQL tests catch a missing revoke.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- Query statistics for the benchmark, when the server preloads the library.
-- Supabase keeps extensions in schema "extensions", outside the API's reach;
-- created elsewhere it would be exposed through PostgREST. Created only when
-- preloaded, so that "the extension exists" means "the view can be queried".
create schema if not exists extensions;

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_stat_statements')
     and 'pg_stat_statements' = any (string_to_array(
           replace(current_setting('shared_preload_libraries', true), ' ', ''), ','))
  then
    create extension if not exists pg_stat_statements with schema extensions;
  end if;
exception
  when others then
    raise notice 'pg_stat_statements not installed: %', sqlerrm;
end
$$;
