-- Forgetting connections on 410 Gone, without forgetting the ones still opening.
--
-- API Gateway answers a push to a connection whose $connect has not returned
-- yet with 410 Gone, exactly as it answers for a connection that is gone for
-- good; yet that connection is already registered (by its own $connect, which
-- registers before it returns). A presence or message push that races a
-- handshake used to delete the row of a socket about to open, which then
-- received nothing until it reconnected. So a 410 only forgets connections
-- older than any $connect can take (API Gateway's integration timeout is 29
-- seconds); a young one that really went away is removed by its $disconnect,
-- or by a later 410.

create or replace function public.remove_connections(p_connection_ids text[])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_removed int;
begin
  delete from public.connections c
   where c.connection_id = any (coalesce(p_connection_ids, '{}'::text[]))
     and c.connected_at < now() - interval '30 seconds';
  get diagnostics v_removed = row_count;
  return jsonb_build_object('removed', v_removed);
end;
$$;
