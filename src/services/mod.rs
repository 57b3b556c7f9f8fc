//! What each kind of service needs once it answers: the app role and database on Postgres, the
//! buckets and seed objects on fake-gcs, seed documents on Firestore. Free of Docker plumbing.

pub mod firestore;
pub mod gcs;
pub mod postgres;
pub mod redis;
pub mod seed;
pub mod targets;
