//! One module per API area of PocketBase's Web API; each registers its routes.

pub mod health;
pub mod settings;

use crate::app::Routes;

pub fn register(routes: &mut Routes) {
    health::register(routes);
    settings::register(routes);
}
