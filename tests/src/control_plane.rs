//! A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver (RBAC,
//! a static admin token, service-account tokens) and, on request, kube-controller-manager
//! with only its disruption controller (PodDisruptionBudget status). No kubelet: [`Kubelet`]
//! plays its part for pods (Running/Ready, and finishing deletions).
//!
//! The binaries are built from the Kubernetes and etcd Go modules by
//! `scripts/build-test-servers.sh` into `~/.cache/aws-spots-booster/bin` (or
//! `$BOOSTER_TEST_SERVERS`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Config};

/// Where the binaries are.
pub fn servers_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BOOSTER_TEST_SERVERS") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/aws-spots-booster/bin")
}

/// Whether the binaries exist; when they do not and `BOOSTER_REQUIRE_APISERVER=1` is
/// unset, tests print SKIPPED and return.
pub fn available() -> bool {
    let d = servers_dir();
    let ok = ["etcd", "kube-apiserver", "kube-controller-manager"]
        .iter()
        .all(|b| d.join(b).exists());
    if !ok {
        assert!(
            std::env::var("BOOSTER_REQUIRE_APISERVER").as_deref() != Ok("1"),
            "test servers missing in {}: run scripts/build-test-servers.sh (make test does)",
            d.display()
        );
        eprintln!(
            "SKIPPED real-apiserver test: binaries missing in {} (make test builds them)",
            d.display()
        );
    }
    ok
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits for `port` to accept connections; with `child`, gives up as soon as it exits (a
/// port taken between [`free_port`] and the bind makes a server exit at once).
fn wait_listening(
    port: u16,
    what: &str,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            return Err(format!(
                "{what} exited ({status}) before it listened on {port}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what} did not listen on {port} within {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Two distinct free ports: two calls to [`free_port`] may return the same one.
fn two_ports() -> (u16, u16) {
    let a = free_port();
    loop {
        let b = free_port();
        if b != a {
            return (a, b);
        }
    }
}

/// The static admin token.
pub const ADMIN_TOKEN: &str = "booster-admin-token";

/// A second admin, for the booster alone: its requests are told apart in the audit log.
pub const BOOSTER_TOKEN: &str = "booster-process-token";

/// [`BOOSTER_TOKEN`]'s user name.
pub const BOOSTER_USER: &str = "booster-process";

/// An audit policy that records every request once, when it completes, without bodies.
pub const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [\"RequestReceived\", \"ResponseStarted\"]\nrules:\n- level: Metadata\n";

/// A running control plane; everything stops when it is dropped.
pub struct ControlPlane {
    children: Vec<(String, Child)>,
    /// kube-apiserver's binary and flags, to restart it.
    apiserver: (PathBuf, Vec<String>),
    /// Scratch directory (certificates, keys, data, logs, kubeconfig).
    pub dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// An admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() || std::env::var_os("BOOSTER_KEEP_LOGS").is_some() {
            eprintln!("control plane logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    spawn_env(bin, args, &[], log)
}

/// A process's stdout and stderr, both appended to `log` (created if need be), so that a
/// restarted process adds to its predecessor's log.
pub fn log_to(log: &Path) -> Result<(Stdio, Stdio), String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    Ok((Stdio::from(out), Stdio::from(err)))
}

fn spawn_env(
    bin: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: &Path,
) -> Result<Child, String> {
    let (out, err) = log_to(log)?;
    Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))
}

fn kubeconfig_text(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: user\ncurrent-context: test\n"
    )
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, and kube-controller-manager (its disruption
    /// controller only) when `kcm` is set.
    pub fn start(kcm: bool) -> Result<Self, String> {
        Self::start_with(kcm.then_some("disruption"), false)
    }

    /// Starts etcd and kube-apiserver; kube-controller-manager with `controllers` (its
    /// `--controllers` value) when given; kube-scheduler when `scheduler` is set.
    pub fn start_with(controllers: Option<&str>, scheduler: bool) -> Result<Self, String> {
        Self::start_tuned(controllers, scheduler, &[], &[])
    }

    /// [`ControlPlane::start_with`] with extra etcd and kube-apiserver flags (a flood test
    /// needs a larger etcd quota, say); `{dir}` in an apiserver flag is
    /// [`ControlPlane::dir`].
    pub fn start_tuned(
        controllers: Option<&str>,
        scheduler: bool,
        etcd_extra: &[&str],
        apiserver_extra: &[&str],
    ) -> Result<Self, String> {
        let bin = servers_dir();
        let dir =
            std::env::temp_dir().join(format!("asb-cp-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(dir.join("certs")).map_err(|e| e.to_string())?;
        let mut cp = ControlPlane {
            children: Vec::new(),
            apiserver: (PathBuf::new(), Vec::new()),
            url: String::new(),
            kubeconfig: dir.join("admin.kubeconfig"),
            dir: dir.clone(),
        };
        let p = |f: &str| dir.join(f).display().to_string();

        // Service-account signing key.
        let key = Command::new("openssl")
            .args(["genrsa", "-out", &p("sa.key"), "2048"])
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !key.status.success() {
            return Err("openssl genrsa failed".into());
        }
        let public = Command::new("openssl")
            .args(["rsa", "-in", &p("sa.key"), "-pubout", "-out", &p("sa.pub")])
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !public.status.success() {
            return Err("openssl rsa -pubout failed".into());
        }
        std::fs::write(
            dir.join("tokens.csv"),
            format!(
                "{ADMIN_TOKEN},booster-admin,booster-admin,\"system:masters\"\n{BOOSTER_TOKEN},{BOOSTER_USER},{BOOSTER_USER},\"system:masters\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;

        // A port can be taken by someone else between free_port and etcd's bind: then
        // etcd exits at once, and another pair is tried with a fresh data directory.
        let mut attempt = 0;
        let client_port = loop {
            attempt += 1;
            let (client_port, peer_port) = two_ports();
            let data = format!("etcd-{attempt}");
            let etcd_args: Vec<String> = [
                "--name=test".to_string(),
                format!("--data-dir={}", p(&data)),
                format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync=true".to_string(),
                "--log-level=warn".to_string(),
            ]
            .into_iter()
            .chain(etcd_extra.iter().map(|a| a.to_string()))
            .collect();
            let mut child = spawn(&bin.join("etcd"), &etcd_args, &dir.join("etcd.log"))?;
            match wait_listening(
                client_port,
                "etcd",
                Duration::from_secs(30),
                Some(&mut child),
            ) {
                Ok(()) => {
                    cp.children.push(("etcd".into(), child));
                    break client_port;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if attempt >= 3 {
                        return Err(format!("{e} (attempt {attempt}; see etcd.log)"));
                    }
                    eprintln!("{e}; starting etcd again on other ports");
                }
            }
        };

        let api_port = free_port();
        let api_args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{client_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", p("certs")),
            format!("--token-auth-file={}", p("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            // No service-account controller runs: pods need no `default` account.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--event-ttl=1h".into(),
            "-v=1".into(),
        ]
        .into_iter()
        .chain(
            apiserver_extra
                .iter()
                .map(|a| a.replace("{dir}", &dir.display().to_string())),
        )
        .collect();
        cp.children.push((
            "kube-apiserver".into(),
            spawn(
                &bin.join("kube-apiserver"),
                &api_args,
                &dir.join("apiserver.log"),
            )?,
        ));
        cp.apiserver = (bin.join("kube-apiserver"), api_args.clone());
        cp.url = format!("https://127.0.0.1:{api_port}");
        std::fs::write(&cp.kubeconfig, kubeconfig_text(&cp.url, ADMIN_TOKEN))
            .map_err(|e| e.to_string())?;
        wait_listening(
            api_port,
            "kube-apiserver",
            Duration::from_secs(60),
            cp.children.last_mut().map(|(_, c)| c),
        )?;

        if let Some(controllers) = controllers {
            let args: Vec<String> = vec![
                format!("--kubeconfig={}", cp.kubeconfig.display()),
                format!("--controllers={controllers}"),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()),
                "--use-service-account-credentials=false".into(),
                "-v=1".into(),
            ];
            cp.children.push((
                "kube-controller-manager".into(),
                spawn(
                    &bin.join("kube-controller-manager"),
                    &args,
                    &dir.join("kcm.log"),
                )?,
            ));
        }
        if scheduler {
            let args: Vec<String> = vec![
                format!("--kubeconfig={}", cp.kubeconfig.display()),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()),
                "-v=1".into(),
            ];
            cp.spawn_server("kube-scheduler", &bin.join("kube-scheduler"), &args)?;
        }
        Ok(cp)
    }

    /// A kubeconfig for the booster's own admin user ([`BOOSTER_USER`]).
    pub fn booster_kubeconfig(&self) -> Result<PathBuf, String> {
        let path = self.dir.join("booster-user.kubeconfig");
        std::fs::write(&path, kubeconfig_text(&self.url, BOOSTER_TOKEN))
            .map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Requests by `user` recorded in the audit log (`audit.log` in [`ControlPlane::dir`],
    /// when the apiserver was started with [`AUDIT_POLICY`]), by `verb resource`.
    pub fn audited(&self, user: &str) -> std::collections::BTreeMap<String, u64> {
        let text = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        let mut out = std::collections::BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["user"]["username"].as_str() != Some(user) {
                continue;
            }
            let key = format!(
                "{} {}",
                v["verb"].as_str().unwrap_or("?"),
                v["objectRef"]["resource"].as_str().unwrap_or("?")
            );
            *out.entry(key).or_default() += 1;
        }
        out
    }

    /// Kills kube-apiserver (SIGKILL, as a crash or a node loss does), keeps it down for
    /// `down`, starts it again with the same flags (same port, certificates and etcd) and
    /// waits for its port. Returns how long it was gone.
    pub fn restart_apiserver(&mut self, down: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == "kube-apiserver")
            .ok_or("no kube-apiserver")?;
        let (_, mut old) = self.children.remove(i);
        let _ = old.kill();
        let _ = old.wait();
        std::thread::sleep(down);
        let (bin, args) = self.apiserver.clone();
        let child = spawn(&bin, &args, &self.dir.join("apiserver.log"))?;
        self.children.insert(i, ("kube-apiserver".into(), child));
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("apiserver port")?;
        wait_listening(
            port,
            "kube-apiserver",
            Duration::from_secs(60),
            self.children.get_mut(i).map(|(_, c)| c),
        )?;
        Ok(started.elapsed())
    }

    /// Stops the server `name` with SIGSTOP (its connections stay open and answer
    /// nothing); it continues when the guard is dropped.
    pub fn freeze(&self, name: &str) -> Result<Frozen, String> {
        let pid = self
            .children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
            .ok_or_else(|| format!("no server {name}"))?;
        Frozen::pid(pid)
    }

    /// Starts another server beside the control plane, logging to `<name>.log` in
    /// [`ControlPlane::dir`]; it is stopped with the control plane.
    pub fn spawn_server(&mut self, name: &str, bin: &Path, args: &[String]) -> Result<(), String> {
        self.spawn_server_with_env(name, bin, args, &[])
    }

    /// [`ControlPlane::spawn_server`] with extra environment variables.
    pub fn spawn_server_with_env(
        &mut self,
        name: &str,
        bin: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<(), String> {
        let child = spawn_env(bin, args, env, &self.dir.join(format!("{name}.log")))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// A client from `kubeconfig` (current context), once the apiserver answers.
    pub async fn client_from(kubeconfig: &Path) -> Result<Client, String> {
        let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
        let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Client::try_from(booster_k8s::without_retries(cfg)).map_err(|e| e.to_string())
    }

    /// An admin client, after the apiserver is ready (RBAC bootstrap done).
    pub async fn admin(&self) -> Result<Client, String> {
        let client = Self::client_from(&self.kubeconfig).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .request_text(http_get("/readyz").map_err(|e| e.to_string())?)
                .await;
            match ready {
                Ok(t) if t.trim() == "ok" => return Ok(client),
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "apiserver not ready in 60 s; log: {}",
                        self.dir.join("apiserver.log").display()
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A kubeconfig for `token` (a service account's), written beside the admin one.
    pub fn kubeconfig_for(&self, name: &str, token: &str) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, kubeconfig_text(&self.url, token)).map_err(|e| e.to_string())?;
        Ok(path)
    }
}

fn http_get(path: &str) -> Result<http::Request<Vec<u8>>, http::Error> {
    http::Request::get(path).body(Vec::new())
}

/// Plays the kubelet for pods: marks bound pods Running and Ready, and finishes the
/// deletion of terminating pods after `grace`.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    /// Starts it on `client`.
    pub fn start(client: Client, grace: Duration) -> Self {
        let task = tokio::spawn(async move {
            let pods = Api::<Pod>::all(client.clone());
            let stream = watcher(pods, watcher::Config::default()).applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                let Ok(p) = ev else { continue };
                let (Some(ns), Some(name)) =
                    (p.metadata.namespace.clone(), p.metadata.name.clone())
                else {
                    continue;
                };
                let api = Api::<Pod>::namespaced(client.clone(), &ns);
                if p.metadata.deletion_timestamp.is_some() {
                    let api = api.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        let _ = api
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                    });
                    continue;
                }
                let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if bound && !running {
                    let status = PodStatus {
                        phase: Some("Running".into()),
                        conditions: Some(vec![PodCondition {
                            type_: "Ready".into(),
                            status: "True".into(),
                            ..PodCondition::default()
                        }]),
                        ..PodStatus::default()
                    };
                    let patch = serde_json::json!({ "status": status });
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
            }
        });
        Kubelet { task }
    }
}

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

/// A process stopped with SIGSTOP; SIGCONT when dropped.
pub struct Frozen(u32);

impl Frozen {
    /// Stops `pid`.
    pub fn pid(pid: u32) -> Result<Frozen, String> {
        signal(pid, "-STOP")?;
        Ok(Frozen(pid))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = signal(self.0, "-CONT");
    }
}

/// Sends `sig` (as `kill` spells it: `-TERM`) to `pid`.
pub fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill {sig} {pid}: {e}"))?;
    st.success()
        .then_some(())
        .ok_or_else(|| format!("kill {sig} {pid}: {st}"))
}
