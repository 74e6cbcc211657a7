//! Two apps in one process: state that was process-wide or per-thread (the settings key, the
//! password scheme, the log writer, verified tokens) now belongs to one app, and another app
//! of the same process, on the same thread, does not see it.

use super::testing::{open_core, run, Answer, TempDir};
use super::App;
use crate::auth::password::Scheme;
use crate::encryption::SettingsKey;
use crate::state::Core;
use std::sync::Arc;
use std::time::Duration;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "1234567890";

fn core(dir: &TempDir, key: SettingsKey, scheme: Scheme) -> Arc<Core> {
    open_core(dir.path(), key, scheme).expect("a test pb_data")
}

fn stored_settings(core: &Core) -> Vec<u8> {
    (core.store.reader().unwrap())
        .read(|c| {
            Ok(c.query_row(
                "SELECT CAST(`value` AS BLOB) FROM `_params` WHERE `id` = 'settings'",
                [],
                |r| r.get::<_, Vec<u8>>(0),
            )?)
        })
        .unwrap()
}

async fn sign_up(app: &App, email: &str) -> Answer {
    let body =
        format!(r#"{{"email":"{email}","password":"{PASSWORD}","passwordConfirm":"{PASSWORD}"}}"#);
    app.request(
        "POST /api/collections/users/records HTTP/1.1\ncontent-type: application/json",
        body.as_bytes(),
    )
    .await
}

async fn sign_in(app: &App, email: &str) -> Answer {
    let body = format!(r#"{{"identity":"{email}","password":"{PASSWORD}"}}"#);
    app.request(
        "POST /api/collections/users/auth-with-password HTTP/1.1\ncontent-type: application/json",
        body.as_bytes(),
    )
    .await
}

fn password_hash(core: &Core, email: &str) -> String {
    (core.store.reader().unwrap())
        .read(|c| {
            Ok(c.query_row(
                "SELECT `password` FROM `users` WHERE `email` = ?1",
                [email],
                |r| r.get::<_, String>(0),
            )?)
        })
        .unwrap()
}

#[test]
fn settings_keys_belong_to_their_app() {
    let (dir_a, dir_b) = (TempDir::new("state-key-a"), TempDir::new("state-key-b"));
    let a = core(
        &dir_a,
        SettingsKey::new("A_KEY", Some(KEY.to_vec())),
        Scheme::Bcrypt,
    );
    let b = core(&dir_b, SettingsKey::default(), Scheme::Bcrypt);
    // both save, in the same process: A seals with its key, B (no key) stores plain JSON
    for (core, name) in [(&a, "sealed app"), (&b, "plain app")] {
        let mut changed = (*core.settings.get()).clone();
        changed.meta.app_name = name.into();
        run(core.settings.save(&core.store, changed)).unwrap();
    }
    let sealed = stored_settings(&a);
    assert!(serde_json::from_slice::<serde_json::Value>(&sealed).is_err());
    let opened = crate::encryption::decrypt(&sealed, KEY).unwrap();
    let opened: serde_json::Value = serde_json::from_slice(&opened).unwrap();
    assert_eq!(opened["meta"]["appName"], "sealed app");
    let plain: serde_json::Value = serde_json::from_slice(&stored_settings(&b)).unwrap();
    assert_eq!(plain["meta"]["appName"], "plain app");
    a.store.close();
    b.store.close();
    // A's pb_data opens again with its key, and without it fails with PocketBase's message
    let again = core(
        &dir_a,
        SettingsKey::new("A_KEY", Some(KEY.to_vec())),
        Scheme::Bcrypt,
    );
    assert_eq!(again.settings.get().meta.app_name, "sealed app");
    again.store.close();
    let err = open_core(
        dir_a.path(),
        SettingsKey::new("A_KEY", None),
        Scheme::Bcrypt,
    )
    .err()
    .expect("sealed settings without a key");
    assert!(
        err.to_string().contains("missing encryption key \"A_KEY\""),
        "{err}"
    );
}

#[test]
fn password_schemes_belong_to_their_app() {
    let (dir_a, dir_b) = (TempDir::new("state-pw-a"), TempDir::new("state-pw-b"));
    let a = core(&dir_a, SettingsKey::default(), Scheme::Argon2id);
    let b = core(&dir_b, SettingsKey::default(), Scheme::Bcrypt);
    run(async {
        let (app_a, app_b) = (App::for_test(a.clone()), App::for_test(b.clone()));
        assert_eq!(sign_up(&app_a, "a@example.com").await.status, 200);
        assert_eq!(sign_up(&app_b, "b@example.com").await.status, 200);
    });
    assert!(password_hash(&a, "a@example.com").starts_with("$argon2id$"));
    assert!(password_hash(&b, "b@example.com").starts_with("$2a$"));
    a.store.close();
    b.store.close();
}

#[test]
fn verified_tokens_and_logs_belong_to_their_app() {
    let (dir_a, dir_b) = (TempDir::new("state-tok-a"), TempDir::new("state-tok-b"));
    let a = core(&dir_a, SettingsKey::default(), Scheme::Bcrypt);
    let b = core(&dir_b, SettingsKey::default(), Scheme::Bcrypt);
    // only A writes request logs
    let settings = a.clone();
    a.logs
        .start(&a.store, move || settings.settings.get().logs.max_data_size)
        .unwrap();
    run(async {
        let (app_a, app_b) = (App::for_test(a.clone()), App::for_test(b.clone()));
        assert_eq!(sign_up(&app_a, "a@example.com").await.status, 200);
        let auth = sign_in(&app_a, "a@example.com").await.json();
        let (token, id) = (
            auth["token"].as_str().unwrap().to_string(),
            auth["record"]["id"].as_str().unwrap().to_string(),
        );
        let view =
            format!("GET /api/collections/users/records/{id} HTTP/1.1\nauthorization: {token}");
        // A knows the token: its worker verified it once and remembers it
        let seen = app_a.request(&view, b"").await;
        assert_eq!(
            (seen.status, seen.json()["id"].as_str()),
            (200, Some(id.as_str()))
        );
        assert_eq!(app_a.ctx.verified.remembered(), 1);
        // B, on the same thread, has no such record: the token is no one's there, and B's
        // worker remembered nothing of A's
        assert_eq!(app_b.request(&view, b"").await.status, 404);
        assert_eq!(app_b.ctx.verified.remembered(), 0);
        for _ in 0..3 {
            assert_eq!(
                app_b.request("GET /api/health HTTP/1.1", b"").await.status,
                200
            );
        }
    });
    a.logs.flush(Duration::from_secs(10));
    b.logs.flush(Duration::from_secs(10));
    let count = |core: &Core| {
        (core.store.aux_reader().unwrap())
            .read(|c| Ok(c.query_row("SELECT count(*) FROM `_logs`", [], |r| r.get::<_, i64>(0))?))
            .unwrap()
    };
    // A's log holds A's three requests (sign-up, sign-in, the view), none of B's four
    assert_eq!(count(&a), 3);
    assert_eq!(count(&b), 0);
    assert!(!b.logs.enabled());
    a.store.close();
    b.store.close();
}
