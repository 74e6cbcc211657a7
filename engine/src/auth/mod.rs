//! Who is calling: auth tokens as PocketBase issues them.

pub mod token;

pub use token::{authenticate, AuthRecord};
