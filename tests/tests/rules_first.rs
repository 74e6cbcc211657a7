//! Rules that depend only on the request, end to end and side by side with PocketBase
//! (issue 18 "Lists", issue 16 "Check rules before heavy parsing"):
//!
//! - a list/view rule such as `@request.auth.id != ""` is folded per caller: a guest gets
//!   PocketBase's empty page (or 404) without a query, a signed-in user the rows;
//! - a create/update/delete rule that folds to FALSE before the body is read refuses with
//!   PocketBase's answer for that rule failing, for JSON and multipart bodies alike, and a
//!   rule that passes goes on as before;
//! - an update/delete rule that reads the stored record but no `@request.body` is checked
//!   before the body.
//!
//! Each request is sent to PocketBun and to PocketBase 0.40.6 over copies of the
//! conformance fixture; the answers must be equal (ids and dates aside). Where a malformed
//! body now meets the rule first, each server's own answer is asserted (the README's
//! deliberate differences). Needs `../shared/conformance` and PocketBase: fails under
//! `CI=true` without them, else prints one line and skips.

use pocketbun_tests::Server;
use serde_json::{json, Value};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;
// users/4q1xlclmfloku33 of the fixture
const USER: &str = pocketbun_tests::fixture::USER_TOKEN;

const AUTHED: &str = "@request.auth.id != \"\"";

/// An answer without what differs between two servers (ids, dates).
fn comparable((status, mut body): (u16, Value)) -> (u16, Value) {
    fn strip(v: &mut Value) {
        if let Value::Object(m) = v {
            for k in ["id", "created", "updated"] {
                m.remove(k);
            }
            if let Some(Value::Array(items)) = m.get_mut("items") {
                items.iter_mut().for_each(strip);
            }
        }
    }
    strip(&mut body);
    (status, body)
}

fn multipart(title: &str) -> (&'static str, Vec<u8>) {
    (
        "multipart/form-data; boundary=XyZ",
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n--XyZ--\r\n"
        )
        .into_bytes(),
    )
}

/// Creates the test collections on `server` (as the superuser) and one record in each;
/// returns the records' ids.
fn setup(server: &Server) -> (String, String) {
    let collection = |name: &str, update: &str, delete: &str| {
        json!({
            "name": name,
            "type": "base",
            "fields": [{"name": "title", "type": "text", "required": true}],
            "listRule": AUTHED,
            "viewRule": AUTHED,
            "createRule": AUTHED,
            "updateRule": update,
            "deleteRule": delete,
        })
    };
    for c in [
        collection("fold_notes", AUTHED, AUTHED),
        collection("fold_owned", "title = \"mine\"", "title = \"mine\""),
    ] {
        let (status, body) = server.send_body(
            "POST",
            "/api/collections",
            Some(SUPERUSER),
            "application/json",
            c.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
    }
    let create = |coll: &str, title: &str| {
        let (status, body) = server.send_body(
            "POST",
            &format!("/api/collections/{coll}/records"),
            Some(SUPERUSER),
            "application/json",
            json!({ "title": title }).to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_string()
    };
    create("fold_notes", "first");
    create("fold_notes", "second");
    (create("fold_notes", "third"), create("fold_owned", "other"))
}

/// The requests whose answers must be PocketBase's, each answered by `server`.
fn answers(server: &Server) -> Vec<(String, (u16, Value))> {
    let (note, owned) = setup(server);
    let json_ct = "application/json";
    let notes = "/api/collections/fold_notes/records";
    let mut out = Vec::new();
    let mut ask = |label: &str, method: &str, target: &str, token, ct: &str, body: &[u8]| {
        let a = comparable(server.send_body(method, target, token, ct, body));
        out.push((label.to_string(), a));
    };
    for (who, token) in [("guest", None), ("user", Some(USER))] {
        for q in [
            "",
            "?page=2&perPage=2",
            "?skipTotal=1",
            "?filter=title%3D'first'",
        ] {
            ask(
                &format!("{who} list {q}"),
                "GET",
                &format!("{notes}{q}"),
                token,
                "",
                b"",
            );
        }
        ask(
            &format!("{who} list bad filter"),
            "GET",
            &format!("{notes}?filter=nope%3D1"),
            token,
            "",
            b"",
        );
        ask(
            &format!("{who} view"),
            "GET",
            &format!("{notes}/{note}"),
            token,
            "",
            b"",
        );
        ask(
            &format!("{who} view missing"),
            "GET",
            &format!("{notes}/missing123"),
            token,
            "",
            b"",
        );
    }
    // guest writes: the rule fails before the body matters
    let valid = br#"{"title":"hello"}"#;
    ask("guest create json", "POST", notes, None, json_ct, valid);
    ask(
        "guest create json without the required field",
        "POST",
        notes,
        None,
        json_ct,
        b"{}",
    );
    let (ct, body) = multipart("hello");
    ask("guest create multipart", "POST", notes, None, ct, &body);
    ask(
        "guest update",
        "PATCH",
        &format!("{notes}/{note}"),
        None,
        json_ct,
        valid,
    );
    ask(
        "guest update missing",
        "PATCH",
        &format!("{notes}/missing123"),
        None,
        json_ct,
        valid,
    );
    ask(
        "guest delete",
        "DELETE",
        &format!("{notes}/{note}"),
        None,
        "",
        b"",
    );
    // a rule on the stored record, checked before the body
    let owned_target = format!("/api/collections/fold_owned/records/{owned}");
    ask(
        "update of another's record",
        "PATCH",
        &owned_target,
        Some(USER),
        json_ct,
        valid,
    );
    ask(
        "delete of another's record",
        "DELETE",
        &owned_target,
        Some(USER),
        "",
        b"",
    );
    ask(
        "update of another's record, multipart",
        "PATCH",
        &owned_target,
        Some(USER),
        ct,
        &body,
    );
    // the rule passes: as before
    ask(
        "user create json",
        "POST",
        notes,
        Some(USER),
        json_ct,
        valid,
    );
    ask(
        "user create multipart",
        "POST",
        notes,
        Some(USER),
        ct,
        &body,
    );
    ask(
        "user create invalid",
        "POST",
        notes,
        Some(USER),
        json_ct,
        b"{}",
    );
    ask(
        "user update",
        "PATCH",
        &format!("{notes}/{note}"),
        Some(USER),
        json_ct,
        br#"{"title":"changed"}"#,
    );
    ask(
        "user update malformed",
        "PATCH",
        &format!("{notes}/{note}"),
        Some(USER),
        json_ct,
        b"{\"broken",
    );
    ask(
        "user delete",
        "DELETE",
        &format!("{notes}/{note}"),
        Some(USER),
        "",
        b"",
    );
    ask("guest list after", "GET", notes, None, "", b"");
    ask("user list after", "GET", notes, Some(USER), "", b"");
    out
}

#[test]
fn request_only_rules_answer_as_pocketbase() {
    let test = "request_only_rules_answer_as_pocketbase";
    let Some((ours, theirs)) = Server::pair_on_fixture(test) else {
        return;
    };
    let (a, b) = (answers(&ours), answers(&theirs));
    assert_eq!(a.len(), b.len());
    for ((label, ours), (_, theirs)) in a.iter().zip(&b) {
        assert_eq!(ours, theirs, "{label}: PocketBun vs PocketBase");
    }
    // not vacuous: the guest is refused and the user served
    let find = |l: &str| &a.iter().find(|(x, _)| x == l).unwrap().1;
    assert_eq!(find("guest list ").1["totalItems"], 0);
    assert_eq!(find("user list ").1["totalItems"], 3);
    assert_eq!(
        find("guest create json"),
        &(
            400,
            json!({"data": {}, "message": "Failed to create record.", "status": 400})
        )
    );
    assert_eq!(find("guest update").0, 404);
    assert_eq!(find("user delete").0, 204);
}

/// A malformed body sent where the rule refuses before the body is read: PocketBase parses
/// first (400), PocketBun answers the rule (create 400 with the rule's message, update and
/// delete 404) without parsing. A deliberate difference, listed in the README.
#[test]
fn a_refusing_rule_answers_before_a_malformed_body() {
    let test = "a_refusing_rule_answers_before_a_malformed_body";
    let Some((ours, theirs)) = Server::pair_on_fixture(test) else {
        return;
    };
    let failed = json!({"data": {}, "message": "Failed to create record.", "status": 400});
    let missing =
        json!({"data": {}, "message": "The requested resource wasn't found.", "status": 404});
    for (server, is_ours) in [(&ours, true), (&theirs, false)] {
        let (note, owned) = setup(server);
        let broken = b"{\"broken";
        let notes = "/api/collections/fold_notes/records";
        let cases = [
            ("POST", notes.to_string(), None, failed.clone()),
            ("PATCH", format!("{notes}/{note}"), None, missing.clone()),
            ("DELETE", format!("{notes}/{note}"), None, missing.clone()),
            (
                "PATCH",
                format!("/api/collections/fold_owned/records/{owned}"),
                Some(USER),
                missing.clone(),
            ),
        ];
        for (method, target, token, refused) in cases {
            let (status, body) =
                server.send_body(method, &target, token, "application/json", broken);
            if is_ours {
                let want = refused["status"].as_u64().map(|s| s as u16);
                assert_eq!((Some(status), body), (want, refused), "{method} {target}");
            } else {
                assert_eq!(status, 400, "PocketBase {method} {target}: {body}");
            }
        }
    }
}
