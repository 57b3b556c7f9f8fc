//! What each kind of service needs once it answers: the app role and database on Postgres, the
//! buckets on fake-gcs. Small, idempotent, and free of Docker plumbing.

pub mod gcs;
pub mod postgres;
