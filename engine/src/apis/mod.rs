//! One module per API area of PocketBase's Web API; each registers its routes.

pub mod collections;
pub mod health;
pub mod search;
pub mod settings;

use crate::app::Routes;

pub fn register(routes: &mut Routes) {
    collections::register(routes);
    health::register(routes);
    settings::register(routes);
}
