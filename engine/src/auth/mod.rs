//! Who is calling: auth tokens as PocketBase issues them, password hashes, and the auth
//! record flows (responses, MFA, login alerts, one-time passwords).

pub mod flow;
pub mod installer;
pub mod oauth2;
pub mod oauth2_exchange;
pub mod password;
pub mod token;

pub use token::{authenticate, authenticate_in, AuthRecord};
