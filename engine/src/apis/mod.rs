//! One module per API area of PocketBase's Web API; each registers its routes.

pub mod answer;
pub mod auth_flow;
pub mod backups;
pub mod batch;
pub mod body;
pub mod caller;
pub mod collections;
pub mod crons;
pub mod dashboard;
pub mod explain;
pub(crate) mod extract;
pub mod files;
pub mod health;
pub mod logs;
pub(crate) mod multipart;
pub mod proxy;
pub mod read_cache;
pub mod realtime;
pub mod record_auth;
pub mod record_auth_email;
pub mod record_auth_oauth2;
pub mod record_write;
pub mod records;
pub mod search;
pub mod settings;
pub mod sql;

use crate::ctx::Routes;

pub fn register(routes: &mut Routes) {
    backups::register(routes);
    batch::register(routes);
    collections::register(routes);
    crons::register(routes);
    dashboard::register(routes);
    explain::register(routes);
    files::register(routes);
    health::register(routes);
    sql::register(routes);
    logs::register(routes);
    realtime::register(routes);
    record_auth::register(routes);
    record_auth_email::register(routes);
    record_auth_oauth2::register(routes);
    records::register(routes);
    settings::register(routes);
}
