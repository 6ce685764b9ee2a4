//! Objects the tests create with the admin client: many Nodes, deploy/rbac.yaml, and
//! service-account tokens.

use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::Client;

/// Creates `n` Nodes `{prefix}-{i}` (no kubelet: NotReady; providerID `i-{i:017x}` in
/// eu-west-1a), 32 at a time: the load a large cluster's Node watch carries.
pub async fn create_nodes(client: &Client, prefix: &str, n: usize) {
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let node = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("{prefix}-{i}"), "labels": {"topology.kubernetes.io/zone": "eu-west-1a", "node.kubernetes.io/instance-type": "m5.xlarge"}},
                    "spec": {"providerID": format!("aws:///eu-west-1a/i-{i:017x}")},
                }))
                .expect("node");
                api.create(&PostParams::default(), &node)
                    .await
                    .expect("node");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// Creates `v` (JSON of a `K`) through `api`.
pub async fn create_via<K>(api: Api<K>, v: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let o: K = serde_json::from_value(v).expect("object");
    api.create(&PostParams::default(), &o)
        .await
        .expect("create");
}

/// deploy/rbac.yaml, applied with the admin client, each object in its own namespace.
pub async fn apply_rbac(client: &Client) {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml"))
        .expect("deploy/rbac.yaml");
    for doc in text.split("\n---\n") {
        let v: serde_json::Value = serde_saphyr::from_str(doc).expect("YAML document");
        let c = client.clone();
        let ns = v["metadata"]["namespace"]
            .as_str()
            .unwrap_or("kube-system")
            .to_string();
        match v["kind"].as_str() {
            Some("ServiceAccount") => {
                create_via(Api::<ServiceAccount>::namespaced(c, &ns), v).await
            }
            Some("ConfigMap") => {
                create_via(
                    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(c, &ns),
                    v,
                )
                .await
            }
            Some("Lease") => create_via(Api::<Lease>::namespaced(c, &ns), v).await,
            Some("ClusterRole") => create_via(Api::<ClusterRole>::all(c), v).await,
            Some("ClusterRoleBinding") => create_via(Api::<ClusterRoleBinding>::all(c), v).await,
            Some("Role") => create_via(Api::<Role>::namespaced(c, &ns), v).await,
            Some("RoleBinding") => create_via(Api::<RoleBinding>::namespaced(c, &ns), v).await,
            Some("Namespace") => {
                create_via(Api::<k8s_openapi::api::core::v1::Namespace>::all(c), v).await
            }
            Some("ResourceQuota") => {
                create_via(
                    Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(c, &ns),
                    v,
                )
                .await
            }
            Some("PriorityClass") => {
                create_via(
                    Api::<k8s_openapi::api::scheduling::v1::PriorityClass>::all(c),
                    v,
                )
                .await
            }
            other => panic!("unexpected kind {other:?} in deploy/rbac.yaml"),
        }
    }
}

/// A token for service account `name` in `ns`.
pub async fn token_for(admin: &Client, ns: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request(
            name,
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                },
                ..TokenRequest::default()
            },
        )
        .await
        .expect("token")
        .status
        .expect("status")
        .token
}
