-- Local development users. Their profiles come from the create_profile_for_new_user
-- trigger. The ids are fixed so tests, sample events and docs can name them.
-- Safe to run again.
insert into auth.users (id, email, raw_user_meta_data)
values
  ('00000000-0000-4000-8000-00000000a11c', 'alice@example.com',
   '{"username": "alice", "display_name": "Alice"}'),
  ('00000000-0000-4000-8000-000000000b0b', 'bob@example.com',
   '{"username": "bob", "display_name": "Bob"}'),
  ('00000000-0000-4000-8000-0000000ca201', 'carol@example.com',
   '{"username": "carol", "display_name": "Carol"}'),
  ('00000000-0000-4000-8000-00000000da5e', 'dave@example.com',
   '{"username": "dave", "display_name": "Dave"}')
on conflict do nothing;
