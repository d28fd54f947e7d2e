//! A store whose database is not there returns a typed error, never a panic: a PostgreSQL URL
//! on a closed port, a SQLite file in a directory that does not exist, a URL of no backend.
//! Also checks that a SQLite file is created when missing, through both ways of naming it.

use std::net::TcpListener;
use std::time::Duration;

use ballast_store::{Store, StoreError, StoreOptions};

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

#[tokio::test]
async fn postgres_on_a_closed_port_is_unavailable() {
    let mut options = StoreOptions::new(format!(
        "postgres://postgres:secret-password@127.0.0.1:{}/test",
        closed_port()
    ));
    options.connect_timeout = Duration::from_secs(2);
    let err = Store::open_with(options).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(!err.to_string().contains("secret-password"), "{err}");
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_unavailable() {
    let dir = std::env::temp_dir().join(format!(
        "ballast-store-missing-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let url = format!("sqlite://{}", dir.join("no/such/dir/store.db").display());
    let mut options = StoreOptions::new(url);
    options.connect_timeout = Duration::from_secs(2);
    let err = Store::open_with(options).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                backend: "sqlite",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!dir.exists(), "nothing was created");

    let err = Store::open_sqlite_file(&dir.join("store.db"))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn unknown_scheme_and_bad_url_are_invalid() {
    let err = Store::open("mysql://root:pw@localhost/db")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidUrl { scheme, .. } if scheme == "mysql"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("pw@"), "{err}");
    let err = Store::open("no scheme at all").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    let err = Store::open("postgres://host:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    let mut options = StoreOptions::new("postgres://postgres@127.0.0.1:5432/test");
    options.schema = Some("x; DROP TABLE y".to_string());
    let err = Store::open_with(options).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn sqlite_file_is_created_when_missing() {
    let dir = std::env::temp_dir().join(format!(
        "ballast-store-create-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A path a URL could not carry unescaped.
    let file = dir.join("odd name #1?.db");
    let store = Store::open_sqlite_file(&file).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.ping().await.unwrap();
    assert!(file.exists());
    store.close().await;

    let url_file = dir.join("by-url.db");
    let store = Store::open(&format!("sqlite://{}", url_file.display()))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 4);
    assert!(url_file.exists());
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
