//! TLS against a real Postgres that requires it, with certificates this test makes: the URL's
//! `sslrootcert`, `sslcert` and `sslkey` are honoured (client-certificate auth included), and
//! nothing connects with weaker settings than asked.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use test_support::Cluster;

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    other_ca_pem: String,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn pki() -> Pki {
    let (ca_pem, issuer) = ca("stripe-sync test CA");
    let (other_ca_pem, _) = ca("some other CA");
    let server_key = KeyPair::generate().unwrap();
    // Valid for 127.0.0.1 only: connecting as "localhost" fails verify-full.
    let mut server = CertificateParams::new(Vec::<String>::new()).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "postgres");
    let client_cert = client.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca_pem,
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
        other_ca_pem,
    }
}

fn connect(url: &str, ca_pem: Option<&str>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = pg_connect::connect(url, ca_pem, "pg-connect tls test")
            .await
            .map_err(|(_, m)| m)?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        assert!(row.get::<_, bool>(0), "the session is encrypted");
        Ok(())
    })
}

#[test]
fn tls_files_in_the_url_are_honoured() {
    let pki = pki();
    // TLS only, and a client certificate signed by the test CA is the only way in.
    let cluster = Cluster::start(
        &[
            ("server.crt", pki.server_cert.as_bytes()),
            ("server.key", pki.server_key.as_bytes()),
            ("root.crt", pki.ca_pem.as_bytes()),
        ],
        &[
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
            "ssl_ca_file = 'root.crt'",
        ],
        "local all all trust\nhostssl all all 127.0.0.1/32 cert\nhostnossl all all 127.0.0.1/32 reject\n",
    );
    let ca = cluster.scratch("ca.pem", pki.ca_pem.as_bytes());
    let other_ca = cluster.scratch("other-ca.pem", pki.other_ca_pem.as_bytes());
    let cert = cluster.scratch("client.crt", pki.client_cert.as_bytes());
    let key = cluster.scratch("client.key", pki.client_key.as_bytes());
    let port = cluster.port();
    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");
    let files = format!(
        "sslrootcert={}&sslcert={}&sslkey={}",
        ca.display(),
        cert.display(),
        key.display()
    );

    // Everything given: verify-full with the CA file, authenticated by the client certificate.
    connect(
        &url("127.0.0.1", &format!("sslmode=verify-full&{files}")),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log()));
    // The CA from the config instead of the URL.
    let config_ca = format!(
        "sslmode=verify-full&sslcert={}&sslkey={}",
        cert.display(),
        key.display()
    );
    connect(&url("127.0.0.1", &config_ca), Some(&pki.ca_pem)).unwrap();
    // With a root certificate, require verifies the chain (libpq's rule).
    let wrong_root = format!(
        "sslmode=require&sslrootcert={}&sslcert={}&sslkey={}",
        other_ca.display(),
        cert.display(),
        key.display()
    );
    let e = connect(&url("127.0.0.1", &wrong_root), None).unwrap_err();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("TLS"),
        "{e}"
    );
    // verify-full checks the name; verify-ca does not.
    let e = connect(
        &url("localhost", &format!("sslmode=verify-full&{files}")),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("TLS"),
        "{e}"
    );
    connect(
        &url("localhost", &format!("sslmode=verify-ca&{files}")),
        None,
    )
    .unwrap();
    // Without the client certificate the server refuses: never silently dropped.
    let e = connect(
        &url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ),
        None,
    )
    .unwrap_err();
    assert!(
        e.contains("certificate") || e.contains("authentication"),
        "{e}"
    );
    // A file that cannot be read is named.
    let e = connect(
        &url(
            "127.0.0.1",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
        None,
    )
    .unwrap_err();
    assert!(
        e.contains("sslrootcert") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
}
