-- The Supabase dashboard's security and performance advisors, as one query.
--
-- Written for this project after the lints of supabase/splinter (lints/00NN_*.sql,
-- read at commit 55db5b1, April 2026): each row carries the splinter lint's
-- name and level, and what it flags follows that lint's query. Left out: the
-- lints about Supabase parts this project does not use or that a local
-- database cannot show (auth settings, storage buckets, queues, pg_graphql,
-- replication slots, extension versions, and statistics such as unused
-- indexes and table bloat).
--
-- Run it on the migrated database with pgrst.db_schemas set to the schemas
-- PostgREST exposes (e.g. `set pgrst.db_schemas = 'public'`). One row per
-- finding: name, level (ERROR, WARN or INFO), object (what it is about) and
-- detail. `name object` is how sql/lints/allow.txt names a finding.

with
-- Schemas Supabase itself manages; splinter skips them.
managed (nspname) as (
  select unnest(array[
    '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_config', '_timescaledb_internal', 'auth', 'cron',
    'extensions', 'graphql', 'graphql_public', 'information_schema', 'net', 'pgmq', 'pgroonga', 'pgsodium',
    'pgsodium_masks', 'pgtle', 'pgbouncer', 'pg_catalog', 'realtime', 'repack', 'storage', 'supabase_functions',
    'supabase_migrations', 'tiger', 'topology', 'vault'
  ])
),
-- The schemas the API exposes.
exposed (nspname) as (
  select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', true), ',')))
),
-- Objects an extension owns are the extension's business.
extension_owned (objid) as (
  select objid from pg_catalog.pg_depend where deptype = 'e'
),
-- Tables (and materialized views) of the project.
tables as (
  select c.oid, c.relname, c.relkind, c.relrowsecurity, n.nspname,
         format('%I.%I', n.nspname, c.relname) as object,
         pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
           or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT') as api_readable
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.oid not in (select objid from extension_owned)
),
policies as (
  select t.object, t.nspname, t.relrowsecurity, p.polname, p.polpermissive, p.polroles, p.polcmd,
         pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
         pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check
  from pg_catalog.pg_policy p
  join tables t on t.oid = p.polrelid
  where t.relkind = 'r'
    and t.nspname not in (select nspname from managed)
),
functions as (
  select p.oid, p.proname, p.prosecdef, p.proconfig, n.nspname,
         format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes)) as object
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  where p.oid not in (select objid from extension_owned)
    and n.nspname not in (select nspname from managed)
),
findings (name, level, object, detail) as (
  -- 0001_unindexed_foreign_keys
  select 'unindexed_foreign_keys', 'INFO', format('%s.%I', t.object, ct.conname),
         'A foreign key without a covering index: deletes and updates of the referenced row scan the table.'
  from pg_catalog.pg_constraint ct
  join tables t on t.oid = ct.conrelid
  where ct.contype = 'f'
    and t.nspname not in (select nspname from managed)
    and not exists (
      select 1
      from pg_catalog.pg_index i
      where i.indrelid = ct.conrelid
        and i.indisvalid
        and (string_to_array(i.indkey::text, ' ')::smallint[])[1:array_length(ct.conkey, 1)] = ct.conkey
    )

  -- 0002_auth_users_exposed: a view over auth.users that the API roles can read.
  union all
  select distinct 'auth_users_exposed', 'ERROR', v.object,
         'A view or materialized view in an exposed schema reads auth.users and is readable by anon or authenticated.'
  from pg_catalog.pg_depend d
  join pg_catalog.pg_rewrite r on r.oid = d.objid
  join tables v on v.oid = r.ev_class
  where d.refobjid = to_regclass('auth.users')
    and d.deptype = 'n'
    and v.api_readable
    and v.nspname in (select nspname from exposed)
    and v.relkind in ('v', 'm')

  -- 0003_auth_rls_initplan: auth.<function>() or current_setting() evaluated per row.
  union all
  select 'auth_rls_initplan', 'WARN', format('%s policy %I', object, polname),
         'The policy calls auth.<function>() or current_setting() per row; wrap it as (select auth.<function>()).'
  from policies, lateral unnest(array[qual, with_check]) as expression
  where relrowsecurity
    and expression ~ '(auth\.(uid|jwt|role|email)\(\)|current_setting\()'
    and lower(expression) !~ 'select (auth\.(uid|jwt|role|email)\(\)|current_setting\()'

  -- 0004_no_primary_key
  union all
  select 'no_primary_key', 'INFO', t.object, 'The table has no primary key.'
  from tables t
  where t.relkind = 'r'
    and t.nspname not in (select nspname from managed)
    and not exists (select 1 from pg_catalog.pg_index i where i.indrelid = t.oid and i.indisprimary)

  -- 0006_multiple_permissive_policies: each one runs for every row.
  union all
  select 'multiple_permissive_policies', 'WARN', format('%s %s for %s', p.object, a.action, r.rolname),
         format('Permissive policies %s all apply to the same role and action.', string_agg(quote_ident(p.polname), ', ' order by p.polname))
  from policies p
  join pg_catalog.pg_roles r on p.polroles @> array[r.oid] or p.polroles = array[0::oid]
  cross join lateral unnest(case p.polcmd
    when 'r' then array['SELECT'] when 'a' then array['INSERT'] when 'w' then array['UPDATE']
    when 'd' then array['DELETE'] else array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] end) as a(action)
  where p.polpermissive
    and r.rolname !~ '^pg_'
    and r.rolname !~ '^supabase.*admin$'
    and not r.rolbypassrls
  group by p.object, a.action, r.rolname
  having count(*) > 1

  -- 0007_policy_exists_rls_disabled
  union all
  select distinct 'policy_exists_rls_disabled', 'ERROR', object, 'The table has policies but row level security is off.'
  from policies
  where not relrowsecurity

  -- 0008_rls_enabled_no_policy: nobody but the owner and service_role reads it.
  union all
  select 'rls_enabled_no_policy', 'INFO', t.object, 'Row level security is on and no policy lets anyone through.'
  from tables t
  where t.relkind = 'r'
    and t.relrowsecurity
    and t.nspname not in (select nspname from managed)
    and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = t.oid)

  -- 0009_duplicate_index
  union all
  select 'duplicate_index', 'WARN', format('%I.%I', i.schemaname, i.tablename),
         format('Identical indexes %s.', string_agg(quote_ident(i.indexname), ', ' order by i.indexname))
  from pg_catalog.pg_indexes i
  join tables t on t.nspname = i.schemaname and t.relname = i.tablename
  where t.relkind in ('r', 'm')
    and t.nspname not in (select nspname from managed)
  group by i.schemaname, i.tablename, replace(i.indexdef, i.indexname, '')
  having count(*) > 1

  -- 0010_security_definer_view: a view the API reads with its owner's rights.
  union all
  select 'security_definer_view', 'ERROR', t.object, 'The view runs with its owner''s privileges (no security_invoker).'
  from tables t
  join pg_catalog.pg_class c on c.oid = t.oid
  where t.relkind = 'v'
    and t.api_readable
    and t.nspname in (select nspname from exposed)
    and t.nspname not in (select nspname from managed)
    and not (lower(coalesce(c.reloptions::text, '{}'))::text[]
             && array['security_invoker=1', 'security_invoker=true', 'security_invoker=yes', 'security_invoker=on'])

  -- 0011_function_search_path_mutable
  union all
  select 'function_search_path_mutable', 'WARN', f.object, 'The function does not set search_path.'
  from functions f
  where not exists (select 1 from unnest(coalesce(f.proconfig, '{}')) as c where c like 'search_path=%')

  -- 0013_rls_disabled_in_public
  union all
  select 'rls_disabled_in_public', 'ERROR', t.object, 'The API can read the table and row level security is off.'
  from tables t
  where t.relkind = 'r'
    and not t.relrowsecurity
    and t.api_readable
    and t.nspname in (select nspname from exposed)
    and t.nspname not in (select nspname from managed)

  -- 0014_extension_in_public
  union all
  select 'extension_in_public', 'WARN', quote_ident(e.extname), 'The extension is installed in schema public.'
  from pg_catalog.pg_extension e
  where e.extname <> 'plpgsql'
    and e.extnamespace = 'public'::regnamespace

  -- 0015_rls_references_user_metadata: users edit their own user_metadata.
  union all
  select 'rls_references_user_metadata', 'ERROR', format('%s policy %I', object, polname),
         'The policy reads user_metadata, which every user can edit.'
  from policies, lateral unnest(array[qual, with_check]) as expression
  where expression ~ '(auth\.jwt\(\)|current_setting\(.*request\.jwt\.claims.*\)).*user_metadata'

  -- 0016_materialized_view_in_api and 0017_foreign_table_in_api: no RLS there.
  union all
  select case t.relkind when 'm' then 'materialized_view_in_api' else 'foreign_table_in_api' end, 'WARN', t.object,
         'The API can read it and row level security does not apply to it.'
  from tables t
  where t.relkind in ('m', 'f')
    and t.api_readable
    and t.nspname in (select nspname from exposed)
    and t.nspname not in (select nspname from managed)

  -- 0018_unsupported_reg_types: pg_upgrade cannot carry them.
  union all
  select 'unsupported_reg_types', 'WARN', format('%s.%I', t.object, a.attname),
         format('The column has type %s, which pg_upgrade does not support.', a.atttypid::regtype)
  from pg_catalog.pg_attribute a
  join tables t on t.oid = a.attrelid
  where a.attnum > 0
    and not a.attisdropped
    and a.atttypid in ('regcollation'::regtype, 'regconfig'::regtype, 'regdictionary'::regtype,
                       'regnamespace'::regtype, 'regoper'::regtype, 'regoperator'::regtype,
                       'regproc'::regtype, 'regprocedure'::regtype)
    and t.nspname not in ('pg_catalog', 'information_schema', 'pgsodium')

  -- 0021_fkey_to_auth_unique: Supabase may change auth's unique constraints.
  union all
  select 'fkey_to_auth_unique', 'ERROR', format('%s.%I', t.object, c.conname),
         'A foreign key references a unique constraint of schema auth other than a primary key.'
  from pg_catalog.pg_constraint c
  join tables t on t.oid = c.conrelid
  join pg_catalog.pg_class referenced on referenced.oid = c.confrelid
  join pg_catalog.pg_index i on i.indexrelid = c.conindid
  where c.contype = 'f'
    and referenced.relnamespace = 'auth'::regnamespace
    and i.indisunique
    and not i.indisprimary

  -- 0023_sensitive_columns_exposed: credential- or PII-named columns readable without RLS.
  union all
  select 'sensitive_columns_exposed', 'ERROR', t.object,
         format('Readable through the API without row level security: %s.', string_agg(quote_ident(a.attname), ', ' order by a.attname))
  from tables t
  join pg_catalog.pg_attribute a on a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
  where t.relkind = 'r'
    and t.api_readable
    and not t.relrowsecurity
    and t.nspname in (select nspname from exposed)
    and t.nspname not in (select nspname from managed)
    and replace(lower(a.attname), '-', '_') in (
      'password', 'passwd', 'pwd', 'passphrase', 'secret', 'secret_key', 'private_key', 'api_key', 'apikey',
      'auth_key', 'token', 'jwt', 'access_token', 'refresh_token', 'oauth_token', 'session_token', 'bearer_token',
      'auth_code', 'session_id', 'session_key', 'session_secret', 'recovery_code', 'backup_code',
      'verification_code', 'otp', 'two_factor', '2fa_secret', '2fa_code', 'ssn', 'social_security',
      'social_security_number', 'driver_license', 'drivers_license', 'license_number', 'passport_number',
      'passport_id', 'national_id', 'tax_id', 'credit_card', 'card_number', 'cvv', 'cvc', 'cvn', 'bank_account',
      'account_number', 'routing_number', 'iban', 'swift_code', 'bic', 'health_record', 'medical_record',
      'patient_id', 'insurance_number', 'health_insurance', 'medical_insurance', 'treatment', 'mac_address',
      'macaddr', 'imei', 'device_uuid', 'pgp_key', 'gpg_key', 'ssh_key', 'certificate', 'license_key',
      'activation_key', 'facial_recognition'
    )
  group by t.object

  -- 0024_rls_policy_always_true: a write policy that lets every row through.
  union all
  select 'rls_policy_always_true', 'WARN', format('%s policy %I', p.object, p.polname),
         'A permissive write policy for anon or authenticated that is always true.'
  from policies p
  cross join lateral (select
    regexp_replace(lower(coalesce(p.qual, '')), '\s', '', 'g') in ('true', '(true)', '1=1', '(1=1)') as using_true,
    regexp_replace(lower(coalesce(p.with_check, '')), '\s', '', 'g') in ('true', '(true)', '1=1', '(1=1)') as check_true
  ) x
  where p.relrowsecurity
    and p.polpermissive
    and (p.polroles = array[0::oid]
         or exists (select 1 from unnest(p.polroles) r where r::regrole::text in ('anon', 'authenticated')))
    and (
      (p.polcmd in ('w', 'd', '*') and (x.using_true or p.qual is null))
      or x.check_true
      or (p.with_check is null and p.polcmd = 'a')
      or (p.with_check is null and p.polcmd in ('w', '*') and x.using_true)
    )

  -- 0028_anon_security_definer_function_executable and
  -- 0029_authenticated_security_definer_function_executable: callable through /rpc.
  union all
  select r.role || '_security_definer_function_executable', 'WARN', f.object,
         format('%s can call this SECURITY DEFINER function through the API.', r.role)
  from functions f
  cross join (values ('anon'), ('authenticated')) as r(role)
  where f.prosecdef
    and pg_catalog.has_function_privilege(r.role, f.oid, 'EXECUTE')
    and f.nspname in (select nspname from exposed)
)
select name, level, object, detail
from findings
order by case level when 'ERROR' then 0 when 'WARN' then 1 else 2 end, name, object;
