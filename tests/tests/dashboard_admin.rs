//! The admin side of the dashboard in a real browser: `ui/tests/e2e-admin.mjs` drives Debian's
//! headless Chromium (npm `playwright-core`) against a fresh `pocketbun`, from `/_/` before any
//! superuser exists (the hint where the install link is) and the install link on: token
//! refresh on load and before expiry, "invalidate all" tokens of an auth collection, an auth
//! record's verification mail, email and password change and its external auths (one seeded
//! through the API, then unlinked), the logs' level filter and superuser-requests toggle, the
//! mail settings' test email (into a real SMTP sink), the S3 "test connection" against a real
//! S3 server (moto, with signature checks on: a wrong secret is refused), backup upload,
//! delete and cron, the Superusers page, live realtime updates of the records table, and the
//! rich-text editor's link dialog. Each step checks its effect through the API, the SMTP sink,
//! S3 or a reload; any console error, failed request or request to another host fails it.
//!
//! The same script runs against the real PocketBase of `POCKETBASE_VERSION` (serving the same
//! build from `--publicDir`), which shows that these pages use only PocketBase's public Web API.
//! Without Node, Chromium or moto the test is skipped with one line, and fails under
//! `CI=true`; so does a missing PocketBase (`need` policy).

use pocketbun_tests::dashboard::{mail_drop, on_both_servers, Suite};
use pocketbun_tests::s3::{moto_python, S3Server};
use pocketbun_tests::{need, target_dir, Server};
use std::path::Path;
use std::process::Command;

const TEST: &str = "dashboard_admin_in_headless_chromium";
const BUCKET: &str = "pb-dashboard";

/// Credentials of an IAM user of `s3` allowed everything on S3, with `BUCKET` created; then
/// moto is switched to checking every request's signature, so that a wrong secret fails as on
/// a real S3 (moto accepts any key until told otherwise).
fn s3_credentials(s3: &S3Server) -> (String, String) {
    let script = "import boto3, sys, urllib.request\n\
                  e = sys.argv[1]\n\
                  kw = dict(endpoint_url=e, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
                  iam = boto3.client('iam', **kw)\n\
                  iam.create_user(UserName='pb')\n\
                  iam.put_user_policy(UserName='pb', PolicyName='s3', PolicyDocument='{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}')\n\
                  k = iam.create_access_key(UserName='pb')['AccessKey']\n\
                  boto3.client('s3', **kw).create_bucket(Bucket=sys.argv[2])\n\
                  urllib.request.urlopen(urllib.request.Request(e + '/moto-api/reset-auth', data=b'0', headers={'Content-Type': 'text/plain'}, method='POST'))\n\
                  print(k['AccessKeyId']); print(k['SecretAccessKey'])\n";
    let python = moto_python().expect("moto is installed");
    let out = Command::new(python)
        .args(["-c", script, &s3.endpoint(), BUCKET])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "IAM user in moto: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines().map(str::to_string);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// Runs the admin browser suite against `server`.
fn run_admin_e2e(ui: &Path, server: &Server, version: &str) {
    let mail = mail_drop(server.root());
    // kept after the run (the server's temp dir is not): a failed step's screenshot
    let shots = target_dir()
        .join("dashboard-admin")
        .join(server.kind().name());
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    // a fresh S3 server per run: moto's signature checks stay on once switched on
    let s3 = S3Server::start().expect("moto starts");
    let (key, secret) = s3_credentials(&s3);
    let mut suite = Suite::new("e2e-admin.mjs", "admin browser suite");
    suite.screenshots = Some(shots);
    suite.env = vec![
        ("SMTP_PORT", mail.port.to_string().into()),
        ("MAIL_DIR", mail.dir.into()),
        ("S3_ENDPOINT", s3.endpoint().into()),
        ("S3_BUCKET", BUCKET.into()),
        ("S3_KEY", key.into()),
        ("S3_SECRET", secret.into()),
    ];
    suite.run(ui, server, version);
}

#[test]
fn dashboard_admin_in_headless_chromium() {
    if moto_python().is_none() {
        return need::unavailable(TEST, "moto[server] cannot be installed here");
    }
    on_both_servers(TEST, |ui, spec, version| {
        let server = Server::start(spec, None).unwrap_or_else(|e| panic!("{e}"));
        run_admin_e2e(ui, &server, version);
    });
}
