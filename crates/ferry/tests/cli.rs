//! The command line against topology files: every shipped example is
//! accepted, every malformed one is rejected with exit code 2 and messages
//! naming each offending key path, and no secret is ever printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        // Secrets referenced by the shipped examples.
        .env("FERRY_NEW_PASSWORD", "example-new-password")
        .env("FERRY_KEY_PASSWORD", "example-key-password")
        .env("FERRY_CONTROL_TOKEN", "example-control-token")
        .env("FERRY_OIDC_CLIENT_SECRET", "example-oidc-client-secret")
        .output()
        .expect("ferry binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_example_is_accepted() {
    let files = toml_files(&workspace().join("config"));
    assert!(files.len() >= 3, "config/ should hold the examples");
    for file in files {
        let out = ferry(&["check", "-c", file.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} rejected:\n{}{}",
            file.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("flows ("), "summary printed: {stdout}");
        assert!(
            !stdout.contains("example-new-password")
                && !stdout.contains("example-key-password")
                && !stdout.contains("example-control-token")
                && !stdout.contains("example-oidc-client-secret")
        );
    }
}

#[test]
fn malformed_topologies_exit_2_naming_every_key_path() {
    let files = toml_files(&workspace().join("tests/topologies/bad"));
    assert!(
        files.len() >= 15,
        "at least 15 malformed topologies, found {}",
        files.len()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no '# expect:' line",
            file.display()
        );
        let out = ferry(&["check", "-c", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        for e in &expected {
            // Every problem of the file is reported in the one run, each as
            // "  - <path>: <message>".
            assert!(
                stderr.contains(&format!("  - {e}")),
                "{}: expected a problem at `{e}`, got:\n{stderr}",
                file.display()
            );
        }
        let listed = stderr.lines().filter(|l| l.starts_with("  - ")).count();
        assert_eq!(
            listed,
            expected.len(),
            "{}: unexpected extra problems:\n{stderr}",
            file.display()
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(ferry(&["run"]).status.code(), Some(2), "missing -c");
    assert_eq!(ferry(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        ferry(&["check", "-c", "/nonexistent/ferry.toml"])
            .status
            .code(),
        Some(2)
    );
    let out = ferry(&["run", "-c", "x.toml", "--until", "bored"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ferry(&["check", "-c", "x.toml", "--connect", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--timeout"),
        "{out:?}"
    );
}

#[test]
fn version_and_help() {
    let out = ferry(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ferry "));
    let out = ferry(&["help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for verb in ["run", "check"] {
        assert!(help.contains(verb), "{help}");
    }
}

#[test]
fn version_verbose_names_librdkafka_and_its_features() {
    let out = ferry(&["version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text, format!("ferry {}\n", env!("CARGO_PKG_VERSION")));

    let out = ferry(&["version", "--verbose"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    assert!(
        text.contains(&format!("librdkafka {librdkafka} (0x")),
        "{text}"
    );
    let features = text
        .lines()
        .find_map(|l| l.strip_prefix("builtin.features: "))
        .unwrap_or_else(|| panic!("no builtin.features line: {text}"));
    let features: Vec<&str> = features.split(',').collect();
    // What the release build is configured with (Cargo.toml's rdkafka
    // features): TLS, SASL (SCRAM, OAUTHBEARER, GSSAPI), zstd, and curl,
    // which librdkafka's OIDC token fetching needs (it then lists http and
    // oidc).
    for wanted in [
        "ssl",
        "sasl_scram",
        "sasl_oauthbearer",
        "sasl_gssapi",
        "zstd",
        "http",
        "oidc",
    ] {
        assert!(
            features.contains(&wanted),
            "{wanted} missing from {features:?}"
        );
    }
}

#[test]
fn no_secret_in_any_output_even_when_the_file_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, "file-sentinel-5ecret\n").unwrap();
    let topo = dir.path().join("t.toml");
    std::fs::write(
        &topo,
        format!(
            r#"
[clusters.a]
bootstrap_servers = "127.0.0.1:1"
[clusters.a.client]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "ferry"
"sasl.password" = "${{file:{}}}"
"ssl.key.password" = "literal-sentinel-5ecret"
[clusters.b]
bootstrap_servers = "127.0.0.1:2"
[[flows]]
source = "a"
target = "b"
topics = ["bad("]
"#,
            pw_file.display()
        ),
    )
    .unwrap();
    let out = ferry(&["check", "-c", topo.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(!all.contains("sentinel-5ecret"), "{all}");

    // Fixed, and connecting to a closed port: the failure names the
    // cluster, and still no secret.
    let fixed = std::fs::read_to_string(&topo)
        .unwrap()
        .replace("\"bad(\"", "\"ok\"");
    std::fs::write(&topo, fixed).unwrap();
    let out = ferry(&["check", "-c", topo.to_str().unwrap(), "--connect"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("cluster a"), "{all}");
    assert!(!all.contains("sentinel-5ecret"), "{all}");
}

/// AWS secret keys, session tokens and the signed MSK IAM token never reach
/// any output: not when a token is signed and the broker is unreachable, nor
/// on the error paths of the credential chain (expired container
/// credentials, a web identity token STS rejects).
#[test]
fn no_aws_secret_or_msk_token_in_any_output() {
    use ferry_testkit::http_stub::StubServer;

    const SECRET: &str = "aws-secret-sentinel-5ecret";
    const SESSION: &str = "aws-session-sentinel-t0ken";
    const WEB_IDENTITY: &str = "web-identity-sentinel-jwt";
    // base64url of "https://kafka.": the start of every signed token.
    const TOKEN_PREFIX: &str = "aHR0cHM6Ly9rYWZrYS";

    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("msk.toml");
    std::fs::write(
        &topo,
        r#"
[clusters.msk]
bootstrap_servers = "127.0.0.1:1"
aws_msk_iam = { region = "eu-west-1" }
[clusters.local]
bootstrap_servers = "127.0.0.1:2"
[[flows]]
source = "msk"
target = "local"
[log]
level = "debug"
"#,
    )
    .unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.args(["check", "-c", topo.to_str().unwrap(), "--connect"])
            .env("RUST_LOG", "debug")
            .env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().expect("ferry binary runs");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains("cluster msk"), "{all}");
        for sentinel in [SECRET, SESSION, WEB_IDENTITY, TOKEN_PREFIX] {
            assert!(!all.contains(sentinel), "{sentinel} printed:\n{all}");
        }
        all
    };

    // A token is signed (the session token is inside it); the broker is
    // unreachable.
    run(&[
        ("AWS_ACCESS_KEY_ID", "AKIDSENTINEL"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", SESSION),
    ]);

    // The container endpoint hands out credentials that have expired.
    let container = StubServer::start(|_| {
        (
            200,
            format!(
                r#"{{"AccessKeyId":"ASIASENTINEL","SecretAccessKey":"{SECRET}","Token":"{SESSION}","Expiration":"2020-01-01T00:00:00Z"}}"#
            ),
        )
    });
    let uri = format!("{}/creds", container.url);
    let all = run(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str())]);
    assert!(
        all.contains("AWS credentials from container have expired"),
        "{all}"
    );

    // STS rejects the web identity token.
    let sts = StubServer::start(|_| {
        (
            403,
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>".into(),
        )
    });
    let token_file = dir.path().join("web-identity-token");
    std::fs::write(&token_file, WEB_IDENTITY).unwrap();
    let all = run(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry"),
        ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
    ]);
    assert!(
        all.contains("HTTP 403: AccessDenied Not authorized"),
        "{all}"
    );
}

#[test]
fn oauthbearer_without_a_token_endpoint_exits_2_without_showing_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("t.toml");
    std::fs::write(
        &topo,
        r#"
[clusters.a]
bootstrap_servers = "127.0.0.1:1"
[clusters.a.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "OAUTHBEARER"
"sasl.oauthbearer.method" = "oidc"
"sasl.oauthbearer.client.id" = "ferry"
"sasl.oauthbearer.client.secret" = "oidc-sentinel-5ecret"
[clusters.b]
bootstrap_servers = "127.0.0.1:2"
[[flows]]
source = "a"
target = "b"
topics = ["t"]
"#,
    )
    .unwrap();
    let out = ferry(&["check", "-c", topo.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("  - clusters.a.client.\"sasl.oauthbearer.token.endpoint.url\": missing"),
        "{all}"
    );
    assert!(!all.contains("oidc-sentinel-5ecret"), "{all}");
}

#[test]
fn slots_outside_1_to_1024_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for slots in ["0", "2000"] {
        let topo = dir.path().join(format!("slots-{slots}.toml"));
        std::fs::write(
            &topo,
            format!(
                "[clusters.a]\nbootstrap_servers = \"127.0.0.1:1\"\n\
                 [clusters.b]\nbootstrap_servers = \"127.0.0.1:2\"\n\
                 [[flows]]\nsource = \"a\"\ntarget = \"b\"\ntopics = [\"t\"]\nslots = {slots}\n"
            ),
        )
        .unwrap();
        let out = ferry(&["check", "-c", topo.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "slots = {slots}: {stderr}");
        assert!(
            stderr.contains(&format!("  - flows[0].slots: invalid slots {slots}")),
            "slots = {slots}: {stderr}"
        );
    }
}

#[test]
fn bad_delivery_settings_exit_2_naming_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (target_client, flow_keys, expected)) in [
        (
            "",
            "delivery = \"exactly-twice\"",
            "  - flows[0].delivery: invalid delivery \"exactly-twice\": use \"at-least-once\" or \"exactly-once\"",
        ),
        (
            "",
            "delivery = \"exactly-once\"\ntransaction_interval = \"5ms\"",
            "  - flows[0].transaction_interval: invalid transaction_interval 5ms: use 10ms..=60s",
        ),
        (
            "[clusters.b.client]\n\"transaction.timeout.ms\" = \"50\"\n",
            "delivery = \"exactly-once\"",
            "  - clusters.b.client.\"transaction.timeout.ms\": 50 ms is shorter than flows[0].transaction_interval (100ms): the broker would abort every transaction before it is committed",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let topo = dir.path().join(format!("delivery-{i}.toml"));
        std::fs::write(
            &topo,
            format!(
                "[clusters.a]\nbootstrap_servers = \"127.0.0.1:1\"\n\
                 [clusters.b]\nbootstrap_servers = \"127.0.0.1:2\"\n{target_client}\
                 [[flows]]\nsource = \"a\"\ntarget = \"b\"\ntopics = [\"t\"]\n{flow_keys}\n"
            ),
        )
        .unwrap();
        let out = ferry(&["check", "-c", topo.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flow_keys}: {stderr}");
        assert!(
            stderr.lines().any(|l| l == expected),
            "{flow_keys}: expected\n{expected}\ngot:\n{stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("  - ")).count(),
            1,
            "{flow_keys}: one problem only:\n{stderr}"
        );
    }
}

#[test]
fn bad_delete_settings_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (flow_keys, expected)) in [
        (
            "propagate_deletes = true\ndelete_grace = \"ten minutes\"",
            "  - flows[0].delete_grace: invalid duration \"ten minutes\"",
        ),
        (
            "propagate_deletes = true\ndelete_grace = \"0s\"",
            "  - flows[0].delete_grace: duration \"0s\" must be greater than zero",
        ),
        (
            "delete_grace = \"5m\"",
            "  - flows[0].delete_grace: only used with propagate_deletes = true",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let topo = dir.path().join(format!("deletes-{i}.toml"));
        std::fs::write(
            &topo,
            format!(
                "[clusters.a]\nbootstrap_servers = \"127.0.0.1:1\"\n\
                 [clusters.b]\nbootstrap_servers = \"127.0.0.1:2\"\n\
                 [[flows]]\nsource = \"a\"\ntarget = \"b\"\ntopics = [\"t\"]\n{flow_keys}\n"
            ),
        )
        .unwrap();
        for command in ["check", "run", "plan"] {
            let out = ferry(&[command, "-c", topo.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command} {flow_keys}: {stderr}"
            );
            assert!(
                stderr.lines().any(|l| l.starts_with(expected)),
                "{command} {flow_keys}: expected\n{expected}\ngot:\n{stderr}"
            );
        }
    }
    // Valid keys pass the check.
    let topo = dir.path().join("deletes-ok.toml");
    std::fs::write(
        &topo,
        "[clusters.a]\nbootstrap_servers = \"127.0.0.1:1\"\n\
         [clusters.b]\nbootstrap_servers = \"127.0.0.1:2\"\n\
         [[flows]]\nsource = \"a\"\ntarget = \"b\"\npropagate_deletes = true\ndelete_grace = \"30s\"\n",
    )
    .unwrap();
    let out = ferry(&["check", "-c", topo.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
