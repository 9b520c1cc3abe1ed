//! The benchmark's users: inserted straight into `auth.users` (as sign-up
//! would; a trigger makes their profiles), one statement for all of them.

use uuid::Uuid;

use crate::tokens;

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub token: String,
}

pub async fn create(db: &tokio_postgres::Client, count: usize, jwt_secret: &str) -> Result<Vec<User>, String> {
    let run = Uuid::new_v4().simple().to_string();
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    let names: Vec<String> = (0..count).map(|i| format!("bench_{}_{i}", &run[..6])).collect();
    db.execute(
        "insert into auth.users (id, email, raw_user_meta_data)
         select id, name || '@bench.test', jsonb_build_object('username', name, 'display_name', name)
         from unnest($1::uuid[], $2::text[]) as u(id, name)",
        &[&ids, &names],
    )
    .await
    .map_err(|e| format!("creating {count} users: {e}"))?;
    Ok(ids
        .into_iter()
        .map(|id| User {
            id,
            token: tokens::access_token(id, jwt_secret),
        })
        .collect())
}
