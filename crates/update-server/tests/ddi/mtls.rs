//! With mutual TLS, a DDI device is its certificate: the controllerId must be the
//! certificate's common name (a token cannot widen that), and the certificate's tags place it
//! in a deployment as they do a native device.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{Ca, client_for};
use crate::{GATEWAY_TOKEN, Server, Target, write_repo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_speaks_for_its_own_controller_id_only() {
    let dir = tempfile::tempdir().unwrap();
    let release = Target { name: "m-1.0.0.swu".into(), version: "1.0.0".into(), bytes: vec![7u8; 4096] };
    let repo = write_repo(dir.path(), &[Target { bytes: release.bytes.clone(), ..release }]);
    let release = Target { name: "m-1.0.0.swu".into(), version: "1.0.0".into(), bytes: Vec::new() };
    let device_ca = Ca::new("snakeoil DDI device CA");
    let server = Server::start_with(dir.path(), &repo, Some(&device_ca));
    let device = client_for(server.addr, &[server.ca.der()], Some(&device_ca.device_in("dev-m", "ddi-fleet")));
    let poll = |path: &str, auth: Option<&str>| {
        let mut r = device.get(server.url(path));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };

    let r = poll("/DEFAULT/controller/v1/dev-m", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(crate::action_links(&r.json::<Value>().await.unwrap()).is_empty(), "nothing deployed yet");
    for auth in [None, Some(format!("GatewayToken {GATEWAY_TOKEN}"))] {
        let r = poll("/DEFAULT/controller/v1/dev-x", auth.as_deref()).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "another controllerId, with {auth:?}");
    }

    // The poll put the device in its certificate's tag; a deployment to the tag reaches it.
    let deployment = server.deploy(&release, "ddi-fleet", &["dev-m"], json!([{"percent": 100}])).await;
    let r = poll("/DEFAULT/controller/v1/dev-m", None).await.unwrap();
    let href = r.json::<Value>().await.unwrap()["_links"]["deploymentBase"]["href"].as_str().unwrap().to_owned();
    assert!(href.contains(&format!("/deploymentBase/{deployment}?c=")), "{href}");
    let path = href.split_once(&format!(":{}", server.addr.port())).unwrap().1.to_owned();
    let r = poll(&path, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let base: Value = r.json().await.unwrap();
    assert_eq!(base["deployment"]["chunks"][0]["artifacts"][0]["size"], 4096);
    let r = poll(&path.replace("/dev-m/", "/dev-x/"), None).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
