//! One module per API area of PocketBase's Web API; each registers its routes.

pub mod health;

use crate::app::Routes;

pub fn register(routes: &mut Routes) {
    health::register(routes);
}
