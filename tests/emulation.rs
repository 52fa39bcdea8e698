//! Tests of the emulated Kubernetes API server itself (tests/support/apiserver).

mod support;

use support::apiserver::ApiServer;

#[tokio::test]
async fn starts() {
    let server = ApiServer::start().await;
    assert!(server.url().starts_with("http://127.0.0.1:"));
}
