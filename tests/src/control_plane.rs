//! A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver (RBAC,
//! a static admin token, service-account tokens) and, on request, kube-controller-manager
//! with only its disruption controller (PodDisruptionBudget status). No kubelet: [`Kubelet`]
//! plays its part for pods (Running/Ready, and finishing deletions).
//!
//! The binaries are built from the Kubernetes and etcd Go modules by
//! `scripts/build-test-servers.sh` into `~/.cache/aws-spots-booster/bin` (or
//! `$BOOSTER_TEST_SERVERS`).

mod kubelet;
mod objects;
mod process;
mod start;

pub use kubelet::Kubelet;
pub use objects::{apply_rbac, create_nodes, create_via, token_for};
pub use process::{free_port, log_to, signal, Frozen};

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use process::{spawn, spawn_env, wait_listening};

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

fn kubeconfig_text(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: user\ncurrent-context: test\n"
    )
}

impl ControlPlane {
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
