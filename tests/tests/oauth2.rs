//! auth-with-oauth2 end to end against a real OpenID Connect provider the test runs on
//! loopback (authorize, token, userinfo and JWKS endpoints; RS256 id tokens): the fixture
//! `users` collection is pointed at it through the collections API, then the full
//! authorization code + PKCE exchange runs through the server — sign-up with `createData`,
//! sign-in through the `_externalAuths` link, linking to an existing user by verified email,
//! id tokens verified against the JWKS (a forged one is refused), wrong PKCE verifiers and
//! unknown providers refused as PocketBase does.
//!
//! Ported needsGo scenarios of `record_auth_with_oauth2_test.go`: the linking ones
//! (`linking_to_existing_users`), the "creating user ..." ones (`sign_up_is_a_validated_record_create`)
//! "store name with Apple provider" (`apple_name_from_the_redirect`), "store name with
//! non-Apple provider" (`redirect_name_is_ignored_by_non_apple_providers`), the two "link by
//! fallback user (user without email / unverified user with matching email)" ones
//! (`linking_the_fallback_user`), "creating user (no extra create data ...)", "... non-empty
//! valid submitted email" and "... empty OAuth2User.avatarURL value"
//! (`sign_up_without_mapping_with_submitted_email_and_without_avatar`) and the four rate-limit
//! ones (`rate_limit_rules_of_auth_with_oauth2`). Not ported:
//! "creating user (with mapped OAuth2 fields and avatarURL->file field)" (its avatar must be
//! downloaded from a public address; loopback ones are refused by design, which is ported),
//! "OnRecordAuthWithOAuth2Request tx body write check" (asserts Go hook calls only).

use pocketbun_tests::fixture::fixture_dir;
use pocketbun_tests::http::Request;
use pocketbun_tests::{Server, ServerSpec};
use serde_json::{json, Value};
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

const SUPERUSER: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

/// The provider's signing key (RSA 2048, made for this test only).
const KEY_DER_B64: &str = "MIIEowIBAAKCAQEApofWXvbBKqDe3CDgOWkWCCq89TvtVCvXVQszS4BkXqiFByt6UkNdE2wEuBwyru7aEyckJsgWjIcTx8uf/pMRU+kPBIciqYQ39rq3c9VxfyD7W7058ZUTRQkKNgF9XLdbA5GPzF14u7HMG+4ClquiGlhSfJaeuHXJqaqyL5cW5jlMocnZAP+q5DuHoD/vs4RNKGa15sgZACjPokiyIfhSY35QFG12OsHdndqbRaDt1ZcMaU9Cay2qsMGjjnLvQXF4wecsb/wSCj1VHC0O2wDZNRRlpDPTY/YLD6t/kiLyB5Xmx11ATIj38+CEYzbMKotX0vLTVeYOxOEdtvvdxhy3nwIDAQABAoIBAADKTjsfIqWII+aZhVbgZ8lcIo9rXGH03025AuJN1qwYUqFJFIiFZ1CrR450G812trQ2kFZaxrid/3sIPVcg7YkfZwHXflOdnAJgunQjRCmdR3QU/sxlr7S5KUI+WZDyEc1/iFYo72S8oEJVq895Owiy+Jk8wb4QWQekFrphFiu7gemSuN1AeWuLboruCd2Oddmb0uKnw5qVyc8E1u1M9IQqBMveS3Pc9p+ZyJOI0s2yCXEotbESXsgKhuO54A3KpGxGLe+3+tQaFfjGvUSAc/T9/53R/fdEy/umBhz+5f6BjZzcU8sHNjwraRIjBXsBP14ja/ky7lhbrx6Hy71dTKECgYEA3ioWCJnVts/H42ve5XXZiCgWB+5n0zLbX6zWKf/yNZC1YPLyWoIO87zD1fWzWftifFfrk4Y0cf3JOPe6hYvA6+XU4LEJS5YeLmeAOtuXIg0wbLUTRUP0sDFVWhOvDCJSTjg6aTTqjmDzz2doNQxtUuFgI1iYrD51yaWyx+THsVECgYEAv+SowMjXFdBAiL4wpIDls6iBqXXImXnXZxAT6fj2n5sxgb6gtYVSNFJZTN7TyBtdm25H0aWKN4mPHC5fsZkhJTYfSwGxS7yhJf7/G2nUWPM+11WFJ9bwr0lXKmqv/xSOZ6cOi+SUUWN5RJWpClZQv3s2ZwqNJIz6/KMNmKEYHe8CgYAXRLEqFXKcwwZce1/NCJrP9+LW0dFt/VWcn62OmI/1rEJS9R8M+7I1NQAN2L4AHqQiAdNakCPODJaWsNuIQSrjih7RqbkfgYmHsq9rerRJjLgVqqFqD8QA8CnQVV9wFego6Rq1CiXG48ClaF8xryuEErbO/OiAocoUZJZk+UExAQKBgBL7eKIRfA1hW3Drd35ebdqW2bS8vQpJnkBIu9+STDs/q+cMx3MNbDNWzhSnmkWaR2k/wIUBnimeRvTftYGpBzlaIEBYO4SldT9/+RZqIqJl9ZpxkEl/nrGITMIaaayPCQNB6FN4Wh+u+mkJcP5fyX8XnisVRR8PfyiMrKSjkvIrAoGBAJfAE500cz6t0CdmDRzDXk9IIxNN+BK308//2LxKs1R7MIdnCXRs6T9WYzbsNVfnDuYLSkZAGlCIYQRTyffjmMuSPqiJx+sU3XU0vVoA8W7ZQTU9qqWXAeo+hbAGyzPoDAQTEi4HOSEsegiYDr9R3DvFU6bxLQBd1vtcaKqnLjmF";
const KEY_N: &str = "pofWXvbBKqDe3CDgOWkWCCq89TvtVCvXVQszS4BkXqiFByt6UkNdE2wEuBwyru7aEyckJsgWjIcTx8uf_pMRU-kPBIciqYQ39rq3c9VxfyD7W7058ZUTRQkKNgF9XLdbA5GPzF14u7HMG-4ClquiGlhSfJaeuHXJqaqyL5cW5jlMocnZAP-q5DuHoD_vs4RNKGa15sgZACjPokiyIfhSY35QFG12OsHdndqbRaDt1ZcMaU9Cay2qsMGjjnLvQXF4wecsb_wSCj1VHC0O2wDZNRRlpDPTY_YLD6t_kiLyB5Xmx11ATIj38-CEYzbMKotX0vLTVeYOxOEdtvvdxhy3nw";

const CLIENT_ID: &str = "pocketbun-client";
const CLIENT_SECRET: &str = "s3cret";

/// The user the provider signs in next (claims of its id token / userinfo).
type Shared = Arc<Mutex<State>>;

#[derive(Default)]
struct State {
    next_user: Value,
    /// code -> (PKCE challenge, user claims)
    codes: HashMap<String, (String, Value)>,
    /// access token -> user claims
    tokens: HashMap<String, Value>,
    counter: u64,
    /// sign the id tokens with a key the JWKS does not publish
    forge: bool,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sign(claims: &Value, kid: &str) -> String {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(KEY_DER_B64)
        .unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn query_map(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A minimal OIDC provider (HTTP/1.1, one request per connection) on a free loopback port.
fn provider(state: Shared) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let state = state.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let (method, target) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let (status, ctype, out) = handle(
                    &state,
                    &method,
                    path,
                    query,
                    &headers,
                    &String::from_utf8_lossy(&body),
                );
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                    out.len()
                );
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    port
}

fn handle(
    state: &Shared,
    method: &str,
    path: &str,
    query: &str,
    headers: &HashMap<String, String>,
    body: &str,
) -> (u16, &'static str, String) {
    let mut st = state.lock().unwrap();
    let json_ct = "application/json";
    match (method, path) {
        // the user agrees at once: the code goes to the redirect URL
        ("GET", "/authorize") => {
            let q = query_map(query);
            assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
            assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
            st.counter += 1;
            let code = format!("code-{}", st.counter);
            let user = st.next_user.clone();
            st.codes.insert(code.clone(), (q["code_challenge"].clone(), user));
            (200, json_ct, json!({"code": code, "state": q["state"]}).to_string())
        }
        ("POST", "/token") => {
            let f = query_map(body);
            use base64::Engine as _;
            let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
            let creds = headers.get("authorization") == Some(&basic)
                || (f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                    && f.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET));
            if !creds || f.get("grant_type").map(String::as_str) != Some("authorization_code") {
                return (401, json_ct, json!({"error": "invalid_client"}).to_string());
            }
            let Some((challenge, user)) = st.codes.remove(f.get("code").map(String::as_str).unwrap_or("")) else {
                return (400, json_ct, json!({"error": "invalid_grant"}).to_string());
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            if b64(&sha2::Sha256::digest(verifier.as_bytes())) != challenge {
                return (400, json_ct, json!({"error": "invalid_grant", "error_description": "PKCE"}).to_string());
            }
            st.counter += 1;
            let access = format!("access-{}", st.counter);
            st.tokens.insert(access.clone(), user.clone());
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let mut claims = user.clone();
            claims["aud"] = json!(CLIENT_ID);
            claims["iss"] = json!("http://issuer.test");
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
            let kid = if st.forge { "unknown-key" } else { "k1" };
            (200, json_ct, json!({
                "access_token": access, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "refresh-1", "id_token": sign(&claims, kid)
            }).to_string())
        }
        ("GET", "/userinfo") => {
            let token = headers.get("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
            match st.tokens.get(token) {
                Some(user) => (200, json_ct, user.to_string()),
                None => (401, json_ct, json!({"error": "invalid_token"}).to_string()),
            }
        }
        ("GET", "/jwks") => (200, json_ct, json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1", "n": KEY_N, "e": "AQAB"}]}).to_string()),
        _ => (404, "text/plain", "not found".into()),
    }
}

fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let raw = body.to_string();
    let mut req = Request::new(method, path)
        .header("Host", &format!("127.0.0.1:{}", server.port()))
        .header("Connection", "close")
        .header("Content-Type", "application/json")
        .header("Content-Length", &raw.len().to_string())
        .body(raw.into_bytes());
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let resp = req
        .send(server.port())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", server.log()));
    let text = resp.text();
    (
        resp.status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Runs the browser part: auth-methods' link to the provider's authorize endpoint, which
/// answers with the code.
fn authorize(server: &Server, provider_port: u16, name: &str) -> (String, String) {
    let (status, methods) = call(
        server,
        "GET",
        "/api/collections/users/auth-methods",
        None,
        &Value::Null,
    );
    assert_eq!(status, 200, "{methods}");
    let p = methods["oauth2"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
        .clone();
    let url = p["authURL"].as_str().unwrap();
    let prefix = format!("http://127.0.0.1:{provider_port}");
    let target = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    let resp = Request::new("GET", target)
        .header("Host", &format!("127.0.0.1:{provider_port}"))
        .header("Connection", "close")
        .send(provider_port)
        .unwrap();
    let answer: Value = serde_json::from_str(&resp.text()).unwrap();
    assert_eq!(answer["state"], p["state"]);
    (
        answer["code"].as_str().unwrap().to_string(),
        p["codeVerifier"].as_str().unwrap().to_string(),
    )
}

#[test]
fn code_exchange_sign_up_sign_in_and_linking() {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let fixture = fixture_dir();
    let server =
        Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://127.0.0.1:{pport}");
    let oidc = |name: &str, userinfo: bool| {
        json!({
            "name": name, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
            "authURL": format!("{base}/authorize"), "tokenURL": format!("{base}/token"),
            "userInfoURL": if userinfo { format!("{base}/userinfo") } else { String::new() },
            "extra": {"jwksURL": format!("{base}/jwks"), "issuers": ["http://issuer.test"]}
        })
    };
    let patch = json!({"mfa": {"enabled": false}, "oauth2": {"enabled": true, "mappedFields": {"name": "name"}, "providers": [oidc("oidc", false), oidc("oidc2", true)]}});
    let (status, body) = call(
        &server,
        "PATCH",
        "/api/collections/users",
        Some(SUPERUSER),
        &patch,
    );
    assert_eq!(status, 200, "{body}");

    // 1. sign-up: id token claims verified against the JWKS, createData kept
    state.lock().unwrap().next_user = json!({"sub": "ext-1", "name": "Ext One", "email": "ext1@example.com", "email_verified": true, "preferred_username": "extone"});
    let (code, verifier) = authorize(&server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier, "redirectURL": "http://localhost/cb", "createData": {"emailVisibility": true}});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["isNew"], true);
    assert_eq!(body["meta"]["id"], "ext-1");
    assert_eq!(body["meta"]["email"], "ext1@example.com");
    assert_eq!(body["meta"]["username"], "extone");
    assert_eq!(body["meta"]["refreshToken"], "refresh-1");
    assert_eq!(body["meta"]["rawUser"]["aud"], CLIENT_ID);
    assert_eq!(body["record"]["email"], "ext1@example.com");
    assert_eq!(body["record"]["verified"], true);
    assert_eq!(body["record"]["emailVisibility"], true);
    assert_eq!(body["record"]["name"], "Ext One");
    assert!(body["token"].as_str().unwrap().len() > 20);
    let id = body["record"]["id"].as_str().unwrap().to_string();

    // the link row and a token that works
    let (status, links) = call(
        &server,
        "GET",
        &format!("/api/collections/_externalAuths/records?filter=recordRef='{id}'"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200);
    assert_eq!(links["totalItems"], 1, "{links}");
    assert_eq!(links["items"][0]["provider"], "oidc");
    assert_eq!(links["items"][0]["providerId"], "ext-1");

    // 2. the same provider user again: signed in through the link, not new
    let (code, verifier) = authorize(&server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["isNew"], false);
    assert_eq!(body["record"]["id"], id.as_str());

    // 3. another provider (userinfo endpoint), same verified email: linked to the same user
    let (code, verifier) = authorize(&server, pport, "oidc2");
    let form = json!({"provider": "oidc2", "code": code, "codeVerifier": verifier});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["isNew"], false);
    assert_eq!(body["record"]["id"], id.as_str());
    let (_, links) = call(
        &server,
        "GET",
        &format!("/api/collections/_externalAuths/records?filter=recordRef='{id}'"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(links["totalItems"], 2, "{links}");

    // 4. a wrong PKCE verifier: the provider refuses the code
    let (code, _) = authorize(&server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": "not-the-verifier"});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Failed to fetch OAuth2 token.")),
        "{body}"
    );

    // 5. an id token signed by a key the JWKS does not have
    state.lock().unwrap().forge = true;
    let (code, verifier) = authorize(&server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Failed to fetch OAuth2 user.")),
        "{body}"
    );
    state.lock().unwrap().forge = false;

    // 6. form validation as PocketBase
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &json!({"provider": "gitlab"}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["provider"]["code"], "validation_invalid_provider",
        "{body}"
    );
    assert_eq!(
        body["data"]["code"]["code"], "validation_required",
        "{body}"
    );
}

/// Points `users` at the local provider (`oidc` over the id token, `apple` with the provider's
/// JWKS) with `mapped` as the mapped fields.
/// The provider's form POST to `/api/oauth2-redirect` with Apple's `user` field.
fn post_redirect_with_user(
    server: &Server,
    code: &str,
    state: &str,
    user: &str,
) -> pocketbun_tests::http::Response {
    let form = format!(
        "code={code}&state={state}&user={}",
        user.bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    Request::new("POST", "/api/oauth2-redirect")
        .header("Host", "127.0.0.1")
        .header("Connection", "close")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", &form.len().to_string())
        .body(form.into_bytes())
        .send(server.port())
        .unwrap()
}

fn configure(server: &Server, pport: u16, mapped: Value) {
    let base = format!("http://127.0.0.1:{pport}");
    let provider = |name: &str| {
        json!({
            "name": name, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
            "authURL": format!("{base}/authorize"), "tokenURL": format!("{base}/token"),
            "userInfoURL": "",
            "extra": {"jwksURL": format!("{base}/jwks"), "issuers": ["http://issuer.test"]}
        })
    };
    let patch = json!({"mfa": {"enabled": false}, "oauth2": {"enabled": true, "mappedFields": mapped, "providers": [provider("oidc"), provider("apple")]}});
    let (status, body) = call(
        server,
        "PATCH",
        "/api/collections/users",
        Some(SUPERUSER),
        &patch,
    );
    assert_eq!(status, 200, "{body}");
}

/// Signs `user` in through the provider with `create_data`.
fn sign_in(
    server: &Server,
    state: &Shared,
    pport: u16,
    user: Value,
    create_data: Value,
) -> (u16, Value) {
    state.lock().unwrap().next_user = user;
    let (code, verifier) = authorize(server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier, "createData": create_data});
    call(
        server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    )
}

/// An open realtime stream subscribed (as a superuser) to `subs`.
struct Stream {
    sock: std::net::TcpStream,
    buf: String,
    id: String,
}

impl Stream {
    fn open(port: u16, subs: &[&str]) -> Stream {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        write!(
            sock,
            "GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut s = Stream {
            sock,
            buf: String::new(),
            id: String::new(),
        };
        assert!(
            s.read_until(|t| t.contains("PB_CONNECT") && t.contains("\"}\n\n")),
            "{}",
            s.buf
        );
        let start = s.buf.find("{\"clientId\":\"").unwrap() + 13;
        let end = start + s.buf[start..].find('"').unwrap();
        s.id = s.buf[start..end].to_string();
        let body = json!({"clientId": s.id, "subscriptions": subs}).to_string();
        let resp = Request::new("POST", "/api/realtime")
            .header("Host", "127.0.0.1")
            .header("Content-Type", "application/json")
            .header("Authorization", SUPERUSER)
            .header("Connection", "close")
            .header("Content-Length", &body.len().to_string())
            .body(body.into_bytes())
            .send(port)
            .unwrap();
        assert_eq!(resp.status, 204, "{}", resp.text());
        s
    }

    fn read_until(&mut self, pred: impl Fn(&str) -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut chunk = [0u8; 16384];
        while !pred(&self.buf) {
            if std::time::Instant::now() > end {
                return false;
            }
            match self.sock.read(&mut chunk) {
                Ok(0) => return pred(&self.buf),
                Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
                Err(_) => {}
            }
        }
        true
    }
}

/// PocketBase's `record_auth_with_oauth2_test.go` sign-up scenarios ("creating user ..."):
/// the sign-up is a record create request, so `createData` is validated like one (form and
/// record field errors), files and relations work, realtime hears of the new record, the
/// mapped username is taken only when valid and free, and a provider avatar on a private
/// address is not downloaded.
#[test]
fn sign_up_is_a_validated_record_create() {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let fixture = fixture_dir();
    let server =
        Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    configure(&server, pport, json!({}));

    // "creating user (submit failure - form auth fields validator)"
    let (status, body) = sign_in(
        &server,
        &state,
        pport,
        json!({"sub": "test_id"}),
        json!({"verified": true, "email": "invalid", "rel": "invalid", "file": "invalid"}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["verified"]["code"], "validation_values_mismatch",
        "{body}"
    );
    for k in ["email", "rel", "file"] {
        assert!(body["data"].get(k).is_none(), "{k}: {body}");
    }

    // "creating user (submit failure - record fields validator)"
    let (status, body) = sign_in(
        &server,
        &state,
        pport,
        json!({"sub": "test_id"}),
        json!({"email": "invalid", "rel": "invalid", "file": "invalid"}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["data"]["email"]["code"], "validation_is_email",
        "{body}"
    );
    assert_eq!(
        body["data"]["rel"]["code"], "validation_missing_rel_records",
        "{body}"
    );
    assert_eq!(
        body["data"]["file"]["code"], "validation_invalid_file",
        "{body}"
    );

    // "creating user (valid create data with empty submitted email)", seen by realtime
    let mut stream = Stream::open(server.port(), &["users/*"]);
    let (status, body) = sign_in(
        &server,
        &state,
        pport,
        json!({"sub": "test_id"}),
        json!({"email": "", "emailVisibility": true, "password": "1234567890", "passwordConfirm": "1234567890",
               "name": "test_name", "username": "test_username", "rel": "0yxhwia2amd8gec"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["isNew"], true);
    let rec = &body["record"];
    assert_eq!(
        (rec["email"].as_str(), rec["emailVisibility"].as_bool()),
        (Some(""), Some(true)),
        "{body}"
    );
    assert_eq!(
        (rec["name"].as_str(), rec["username"].as_str()),
        (Some("test_name"), Some("test_username")),
        "{body}"
    );
    assert_eq!(
        (rec["verified"].as_bool(), rec["rel"].as_str()),
        (Some(true), Some("0yxhwia2amd8gec")),
        "{body}"
    );
    assert!(
        rec.get("password").is_none() && rec.get("tokenKey").is_none(),
        "{body}"
    );
    let id = rec["id"].as_str().unwrap().to_string();
    assert!(
        stream.read_until(|t| t.contains("\"action\":\"create\"") && t.contains(&id)),
        "no realtime create event: {}",
        stream.buf
    );
    // the submitted password is the record's
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        &json!({"identity": "test_username", "password": "1234567890"}),
    );
    assert_eq!(status, 200, "{body}");

    // "... with mapped OAuth2 fields, case-sensitive username and avatarURL->non-file field"
    configure(
        &server,
        pport,
        json!({"username": "username", "avatarURL": "name"}),
    );
    let avatar = format!("http://127.0.0.1:{pport}/oauth2_avatar.png");
    let (status, body) = sign_in(
        &server,
        &state,
        pport,
        json!({"sub": "oauth2_id", "email": "oauth2@example.com", "email_verified": true,
               "preferred_username": "tESt2_username", "name": "oauth2_name", "picture": avatar}),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let rec = &body["record"];
    assert_eq!(rec["username"], "tESt2_username", "{body}");
    assert_eq!(rec["name"], avatar.as_str(), "{body}");
    assert_eq!(
        (rec["verified"].as_bool(), rec["avatar"].as_str()),
        (Some(true), Some("")),
        "{body}"
    );
    assert_eq!(rec["emailVisibility"], false, "{body}");

    // "... duplicated username" and "... username that doesn't match the field validations":
    // the username is generated instead
    for taken in ["test2_username", "!invalid"] {
        let (status, body) = sign_in(
            &server,
            &state,
            pport,
            json!({"sub": format!("u-{taken}"), "email": format!("{}@example.com", taken.len()), "email_verified": true,
                   "preferred_username": taken}),
            json!({}),
        );
        assert_eq!(status, 200, "{taken}: {body}");
        let username = body["record"]["username"].as_str().unwrap();
        assert!(!username.is_empty() && username != taken, "{taken}: {body}");
    }

    // "... local avatarURL->file field": a loopback URL is not fetched
    configure(&server, pport, json!({"avatarURL": "avatar"}));
    let (status, body) = sign_in(
        &server,
        &state,
        pport,
        json!({"sub": "av", "email": "av@example.com", "email_verified": true, "picture": avatar}),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["avatar"], "", "{body}");
}

/// PocketBase's "store name with Apple provider": Apple sends the user's name only with the
/// redirect (`user` form field of a form_post); `/api/oauth2-redirect` keeps it and the code
/// exchange fills the OAuth2 user's name with it. The apple provider runs against the local
/// provider (its JWKS through `extra.jwksURL`). PocketBun only: PocketBase's Apple provider
/// needs Apple's endpoints.
#[test]
fn apple_name_from_the_redirect() {
    if !matches!(
        ServerSpec::from_env().kind,
        pocketbun_tests::ServerKind::PocketBun
    ) {
        println!("SKIPPED: the apple provider cannot be pointed at a local provider on PocketBase");
        return;
    }
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let fixture = fixture_dir();
    let server =
        Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    configure(&server, pport, json!({"name": "name"}));
    state.lock().unwrap().next_user =
        json!({"sub": "apple-1", "email": "apple@example.com", "email_verified": true});
    let (code, verifier) = authorize(&server, pport, "apple");

    let mut stream = Stream::open(server.port(), &["@oauth2"]);
    let user = r#"{"name":{"firstName":"Ann","lastName":"Lee"}}"#;
    let resp = post_redirect_with_user(&server, &code, &stream.id, user);
    assert_eq!(resp.status, 303);
    assert!(resp
        .header("location")
        .unwrap_or("")
        .contains("oauth2-redirect-success"));
    assert!(
        stream.read_until(|t| t.contains("event:@oauth2") && t.contains(&code)),
        "{}",
        stream.buf
    );

    let form = json!({"provider": "apple", "code": code, "codeVerifier": verifier});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["name"], "Ann Lee", "{body}");
    assert_eq!(body["record"]["name"], "Ann Lee", "{body}");
}

/// The users' `_externalAuths` rows as `(provider, providerId)`.
fn links_of(server: &Server, record: &str) -> Vec<(String, String)> {
    let (status, body) = call(
        server,
        "GET",
        &format!("/api/collections/_externalAuths/records?filter=recordRef='{record}'&perPage=100"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(String, String)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["provider"].as_str().unwrap().to_string(),
                i["providerId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn password_works(server: &Server, email: &str) -> bool {
    let body = json!({"identity": email, "password": "1234567890"});
    let (status, _) = call(
        server,
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        &body,
    );
    status == 200
}

/// users test2@example.com (oap640cot4yru2s).
const USER2: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6Im9hcDY0MGNvdDR5cnUycyIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoiX3BiX3VzZXJzX2F1dGhfIiwiZXhwIjoyNTI0NjA0NDYxLCJyZWZyZXNoYWJsZSI6dHJ1ZX0.GfJo6EHIobgas_AXt-M-tj5IoQendPnrkMSe9ExuSEY";
/// users test@example.com (4q1xlclmfloku33, unverified in the fixture).
const USER1: &str = pocketbun_tests::fixture::USER_TOKEN;

/// Runs one auth-with-oauth2 for `user` (id token claims) with `auth` as the caller.
fn oauth2_as(
    server: &Server,
    state: &Shared,
    pport: u16,
    user: Value,
    auth: Option<&str>,
    create_data: Value,
) -> (u16, Value) {
    state.lock().unwrap().next_user = user;
    let (code, verifier) = authorize(server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier, "createData": create_data});
    call(
        server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        auth,
        &form,
    )
}

/// PocketBase's "existing linked OAuth2 ...", "link by email ..." and "link by fallback user
/// ..." scenarios of `record_auth_with_oauth2_test.go`: an unverified record taken over by
/// OAuth2 loses its password (and with it its tokens) and its other provider links; a
/// verified one keeps them; the logged-in record is linked when the provider's email differs.
#[test]
fn linking_to_existing_users() {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let fixture = fixture_dir();
    let start =
        || Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    let stub_link = |server: &Server, record: &str| {
        let body = json!({"collectionRef": "_pb_users_auth_", "recordRef": record, "provider": "oidc", "providerId": "test_id"});
        let (status, body) = call(
            server,
            "POST",
            "/api/collections/_externalAuths/records",
            Some(SUPERUSER),
            &body,
        );
        assert_eq!(status, 200, "{body}");
    };

    // "existing linked OAuth2 (unverified user)": another user's auth is ignored, createData too
    let server = start();
    configure(&server, pport, json!({}));
    stub_link(&server, "4q1xlclmfloku33");
    assert!(password_works(&server, "test@example.com"));
    let (status, body) = oauth2_as(
        &server,
        &state,
        pport,
        json!({"sub": "test_id"}),
        Some(USER2),
        json!({"name": "test_new"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["record"]["id"].as_str(), body["meta"]["id"].as_str()),
        (Some("4q1xlclmfloku33"), Some("test_id")),
        "{body}"
    );
    assert_eq!(
        (
            body["record"]["verified"].as_bool(),
            body["meta"]["isNew"].as_bool()
        ),
        (Some(false), Some(false)),
        "{body}"
    );
    assert_eq!(body["record"]["name"], "test1", "{body}");
    assert!(body["record"].get("tokenKey").is_none() && body["record"].get("password").is_none());
    assert!(
        !password_works(&server, "test@example.com"),
        "the pre-set password must be gone"
    );
    assert_eq!(
        links_of(&server, "4q1xlclmfloku33"),
        vec![("oidc".to_string(), "test_id".to_string())]
    );
    // the tokens issued before the takeover died with the password
    let (status, _) = call(
        &server,
        "POST",
        "/api/collections/users/auth-refresh",
        Some(USER1),
        &Value::Null,
    );
    assert_eq!(status, 401);

    // "existing linked OAuth2 (verified user)": nothing changes but the sign-in
    let (status, body) = {
        // the link above uses providerId test_id too: give this one its own id
        let body = json!({"collectionRef": "_pb_users_auth_", "recordRef": "oap640cot4yru2s", "provider": "oidc", "providerId": "test_id2"});
        let (s, b) = call(
            &server,
            "POST",
            "/api/collections/_externalAuths/records",
            Some(SUPERUSER),
            &body,
        );
        assert_eq!(s, 200, "{b}");
        oauth2_as(
            &server,
            &state,
            pport,
            json!({"sub": "test_id2"}),
            None,
            json!({}),
        )
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["record"]["id"].as_str(),
            body["record"]["verified"].as_bool()
        ),
        (Some("oap640cot4yru2s"), Some(true)),
        "{body}"
    );
    assert_eq!(body["meta"]["isNew"], false);
    assert!(password_works(&server, "test2@example.com"));
    drop(server);

    // "link by email (unverified user)": verified now, password and other links gone
    let server = start();
    configure(&server, pport, json!({}));
    let (status, body) = oauth2_as(
        &server,
        &state,
        pport,
        json!({"sub": "test_id", "email": "test@example.com", "email_verified": true}),
        None,
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["record"]["id"].as_str(),
            body["record"]["verified"].as_bool()
        ),
        (Some("4q1xlclmfloku33"), Some(true)),
        "{body}"
    );
    assert_eq!(body["meta"]["isNew"], false);
    assert!(!password_works(&server, "test@example.com"));
    assert_eq!(
        links_of(&server, "4q1xlclmfloku33"),
        vec![("oidc".to_string(), "test_id".to_string())]
    );

    // "link by email (verified user)": linked, the password stays
    let (status, body) = oauth2_as(
        &server,
        &state,
        pport,
        json!({"sub": "test_id3", "email": "test2@example.com", "email_verified": true}),
        None,
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["record"]["id"].as_str(),
            body["record"]["verified"].as_bool()
        ),
        (Some("oap640cot4yru2s"), Some(true)),
        "{body}"
    );
    assert!(password_works(&server, "test2@example.com"));
    assert_eq!(
        links_of(&server, "oap640cot4yru2s"),
        vec![("oidc".to_string(), "test_id3".to_string())]
    );
    drop(server);

    // "link by fallback user (OAuth2 user with different email)": the logged-in record is
    // linked, stays unverified and keeps its password (it is the caller's own)
    let server = start();
    configure(&server, pport, json!({}));
    let (status, body) = oauth2_as(
        &server,
        &state,
        pport,
        json!({"sub": "test_id", "email": "test2_oauth2@example.com", "email_verified": true}),
        Some(USER1),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["record"]["id"].as_str(),
            body["record"]["verified"].as_bool()
        ),
        (Some("4q1xlclmfloku33"), Some(false)),
        "{body}"
    );
    assert_eq!(body["record"]["email"], "test@example.com");
    assert!(password_works(&server, "test@example.com"));
    let links = links_of(&server, "4q1xlclmfloku33");
    assert!(
        links.contains(&("oidc".to_string(), "test_id".to_string())),
        "{links:?}"
    );
}

/// The "RateLimit rule/tag - ..." scenarios: the rules (with `maxRequests` 0, which settings
/// validation refuses, as the Go test sets them in memory) are written to the stored settings
/// of a fixture copy before the start; the request is refused before any provider is asked.
#[test]
fn rate_limit_rules_of_auth_with_oauth2() {
    let cases = [
        (
            "RateLimit rule - users:authWithOAuth2",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authWithOAuth2"},{"maxRequests":100,"label":"users:auth"},{"maxRequests":0,"label":"users:authWithOAuth2"}]"#,
        ),
        (
            "RateLimit rule - *:authWithOAuth2",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:auth"},{"maxRequests":0,"label":"*:authWithOAuth2"}]"#,
        ),
        (
            "RateLimit tag - users:auth",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":100,"label":"*:authWithOAuth2"},{"maxRequests":0,"label":"users:auth"}]"#,
        ),
        (
            "RateLimit tag - *:auth",
            r#"[{"maxRequests":100,"label":"abc"},{"maxRequests":0,"label":"*:auth"}]"#,
        ),
    ];
    let mut failures = Vec::new();
    for (name, rules) in cases {
        let fixture = pocketbun_tests::fixture::EditedFixture::new(|db| {
            db.execute(
                "UPDATE _params SET value = json_set(value, '$.rateLimits.enabled', json('true'), \
                 '$.rateLimits.rules', json(?1)) WHERE id = 'settings'",
                [rules],
            )
            .expect("rate limit rules");
        });
        let server = Server::start(&ServerSpec::from_env(), Some(fixture.path())).unwrap();
        let (status, body) = call(
            &server,
            "POST",
            "/api/collections/users/auth-with-oauth2",
            None,
            &json!({}),
        );
        if status != 429 || body["data"] != json!({}) {
            failures.push(format!("{name}: {status} {body}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `_authOrigins` rows of a record.
fn origins_of(server: &Server, record: &str) -> u64 {
    let (status, body) = call(
        server,
        "GET",
        &format!("/api/collections/_authOrigins/records?filter=recordRef='{record}'&perPage=1"),
        Some(SUPERUSER),
        &Value::Null,
    );
    assert_eq!(status, 200, "{body}");
    body["totalItems"].as_u64().unwrap()
}

/// An auth-with-oauth2 form without `createData`.
fn plain_oauth2(
    server: &Server,
    state: &Shared,
    pport: u16,
    user: Value,
    auth: Option<&str>,
) -> (u16, Value) {
    state.lock().unwrap().next_user = user;
    let (code, verifier) = authorize(server, pport, "oidc");
    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier});
    call(
        server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        auth,
        &form,
    )
}

/// PocketBase's "link by fallback user (user without email)" and "(unverified user with
/// matching email)": the logged-in record is linked, takes the provider's email when it has
/// none, becomes verified, keeps its password and gets one auth origin.
#[test]
fn linking_the_fallback_user() {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let cases = [
        ("user without email", "test_oauth2@example.com"),
        ("unverified user with matching email", "test@example.com"),
    ];
    for (name, email) in cases {
        let fixture = pocketbun_tests::fixture::EditedFixture::new(|db| {
            if name == "user without email" {
                // Go's app.Save with the old tokenKey restored: a plain column write
                db.execute_batch("UPDATE users SET email = '' WHERE id = '4q1xlclmfloku33'")
                    .unwrap();
            }
        });
        let server = Server::start(&ServerSpec::from_env(), Some(fixture.path()))
            .unwrap_or_else(|e| panic!("{e}"));
        configure(&server, pport, json!({}));
        let (status, body) = plain_oauth2(
            &server,
            &state,
            pport,
            json!({"sub": "test_id", "email": email, "email_verified": true}),
            Some(USER1),
        );
        assert_eq!(status, 200, "{name}: {body}");
        let rec = &body["record"];
        assert_eq!(
            (rec["id"].as_str(), rec["email"].as_str()),
            (Some("4q1xlclmfloku33"), Some(email)),
            "{name}: {body}"
        );
        assert_eq!(
            (
                rec["verified"].as_bool(),
                body["meta"]["isNew"].as_bool(),
                body["meta"]["id"].as_str()
            ),
            (Some(true), Some(false), Some("test_id")),
            "{name}: {body}"
        );
        assert!(body["token"].is_string(), "{name}: {body}");
        assert!(
            rec.get("tokenKey").is_none() && rec.get("password").is_none(),
            "{name}: {body}"
        );
        assert!(password_works(&server, email), "{name}: old password gone");
        assert_eq!(origins_of(&server, "4q1xlclmfloku33"), 1, "{name}");
    }
}

/// PocketBase's "creating user (no extra create data or custom fields mapping)", "... (valid
/// create data with non-empty valid submitted email)" and "... (with mapped OAuth2 avatarURL
/// field but empty OAuth2User.avatarURL value)".
#[test]
fn sign_up_without_mapping_with_submitted_email_and_without_avatar() {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let fixture = fixture_dir();
    let server =
        Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    configure(&server, pport, json!({}));

    // no extra create data or custom fields mapping
    let (status, body) = plain_oauth2(&server, &state, pport, json!({"sub": "test_id"}), None);
    assert_eq!(status, 200, "{body}");
    let rec = &body["record"];
    assert_eq!(
        (
            body["meta"]["isNew"].as_bool(),
            body["meta"]["id"].as_str(),
            rec["email"].as_str(),
            rec["verified"].as_bool()
        ),
        (Some(true), Some("test_id"), Some(""), Some(true)),
        "{body}"
    );
    assert!(body["token"].is_string(), "{body}");
    assert!(
        rec.get("tokenKey").is_none() && rec.get("password").is_none(),
        "{body}"
    );

    // the submitted email wins over the provider's and is not verified
    let (status, body) = sign_in(
        &server,
        &state,
        pport,
        json!({"sub": "test_id2", "email": "oauth2@example.com", "email_verified": true}),
        json!({"email": "test_create@example.com", "emailVisibility": true, "password": "1234567890",
               "passwordConfirm": "1234567890", "name": "test_name", "username": "test_username",
               "rel": "0yxhwia2amd8gec"}),
    );
    assert_eq!(status, 200, "{body}");
    let rec = &body["record"];
    assert_eq!(
        (
            rec["email"].as_str(),
            rec["emailVisibility"].as_bool(),
            rec["verified"].as_bool()
        ),
        (Some("test_create@example.com"), Some(true), Some(false)),
        "{body}"
    );
    assert_eq!(
        (
            rec["name"].as_str(),
            rec["username"].as_str(),
            rec["rel"].as_str()
        ),
        (
            Some("test_name"),
            Some("test_username"),
            Some("0yxhwia2amd8gec")
        ),
        "{body}"
    );
    assert!(
        rec.get("tokenKey").is_none() && rec.get("password").is_none(),
        "{body}"
    );
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        &json!({"identity": "test_username", "password": "1234567890"}),
    );
    assert_eq!(status, 200, "{body}");

    // a mapped avatar field stays empty when the provider has no picture
    configure(&server, pport, json!({"avatarURL": "avatar"}));
    let (status, body) = plain_oauth2(
        &server,
        &state,
        pport,
        json!({"sub": "oauth2_id", "email": "oauth2@example.com", "email_verified": true}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let rec = &body["record"];
    assert_eq!(
        (
            body["meta"]["isNew"].as_bool(),
            rec["email"].as_str(),
            rec["emailVisibility"].as_bool(),
            rec["verified"].as_bool(),
            rec["avatar"].as_str()
        ),
        (
            Some(true),
            Some("oauth2@example.com"),
            Some(false),
            Some(true),
            Some("")
        ),
        "{body}"
    );
}

/// PocketBase's "store name with non-Apple provider": a name kept by `/api/oauth2-redirect`
/// for a code (Apple's `user` form field) is not used by another provider's exchange.
#[test]
fn redirect_name_is_ignored_by_non_apple_providers() {
    let state: Shared = Arc::new(Mutex::new(State::default()));
    let pport = provider(state.clone());
    let fixture = fixture_dir();
    let server =
        Server::start(&ServerSpec::from_env(), Some(&fixture)).unwrap_or_else(|e| panic!("{e}"));
    configure(&server, pport, json!({"name": "name"}));
    state.lock().unwrap().next_user = json!({"sub": "test_id"});
    let (code, verifier) = authorize(&server, pport, "oidc");

    let mut stream = Stream::open(server.port(), &["@oauth2"]);
    let user = r#"{"name":{"firstName":"test_store","lastName":"name"}}"#;
    let resp = post_redirect_with_user(&server, &code, &stream.id, user);
    assert_eq!(resp.status, 303);
    assert!(
        stream.read_until(|t| t.contains("event:@oauth2") && t.contains(&code)),
        "{}",
        stream.buf
    );

    let form = json!({"provider": "oidc", "code": code, "codeVerifier": verifier});
    let (status, body) = call(
        &server,
        "POST",
        "/api/collections/users/auth-with-oauth2",
        None,
        &form,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.to_string().contains("test_store name"),
        "the redirect name was used: {body}"
    );
    assert_eq!(body["record"]["name"], "", "{body}");
}
