//! Who is calling: auth tokens as PocketBase issues them, password hashes, and the auth
//! record clean-ups that follow an update. The auth endpoints' shared flow (responses, MFA,
//! login alerts, one-time passwords) is in `apis::auth_flow`.

pub mod cleanup;
pub mod installer;
pub mod oauth2;
pub mod oauth2_exchange;
pub mod password;
pub mod token;

pub use token::{authenticate, authenticate_in, AuthRecord};
