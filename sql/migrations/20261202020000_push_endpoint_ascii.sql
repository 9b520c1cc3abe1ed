-- A push endpoint is stored only in printable ASCII, as browsers serialise it:
-- the notification function's URL parser takes a host in its xn-- form only.

-- Whether a push endpoint may be stored: an https URL with a host, of at most
-- 2048 bytes, in printable ASCII (a URL as a browser serialises it: a host in
-- its xn-- form, the rest percent-encoded; the notification function's URL
-- parser knows no other form of a host), so without spaces or control
-- characters. A plain-http loopback URL only where the database allows it
-- (app.allow_loopback_push_endpoints = 'on', which only the local stack sets:
-- its push service stand-in has no certificate); elsewhere it would make the
-- notification function post to its own machine.
create or replace function public.valid_push_endpoint(p_endpoint text)
returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(
    octet_length(p_endpoint) <= 2048
    and p_endpoint ~ '^[!-~]*$'
    and (
      p_endpoint ~ '^https://[^/?#\u0001-\u0020\u007f-\u009f]+[^\u0001-\u0020\u007f-\u009f]*$'
      or (current_setting('app.allow_loopback_push_endpoints', true) = 'on'
          and p_endpoint ~ '^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/[^\u0001-\u0020\u007f-\u009f]*)?$')
    ),
    false)
$$;
