//! The booster binary as a scenario runs it: a process with its flags, identity and log,
//! and what a scenario reads from it (readiness, metrics, exit).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{eventually, http_get, metric_sum, Env, Identity, Options};
use crate::control_plane::{free_port, log_to};

impl Env {
    /// Starts the booster binary `bin` with `args` on top of the scenario's defaults, as
    /// production runs it: as [`SERVICE_ACCOUNT`], with deploy/rbac.yaml's rights.
    ///
    /// [`SERVICE_ACCOUNT`]: super::SERVICE_ACCOUNT
    pub fn booster(&self, bin: &Path, name: &str, args: &[&str]) -> Result<Booster, String> {
        Booster::start(bin, self, name, args)
    }

    /// [`Env::booster`] reaching the apiserver at `server` (a proxy), with extra
    /// environment variables; as [`SERVICE_ACCOUNT`].
    ///
    /// [`SERVICE_ACCOUNT`]: super::SERVICE_ACCOUNT
    pub fn booster_at(
        &self,
        bin: &Path,
        name: &str,
        args: &[&str],
        server: &str,
        vars: &[(&str, &str)],
    ) -> Result<Booster, String> {
        let text = std::fs::read_to_string(&self.sa_kubeconfig).map_err(|e| e.to_string())?;
        let path = self.cp.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text.replace(&self.cp.url, server)).map_err(|e| e.to_string())?;
        Booster::start_with(bin, self, name, args, &path, vars, Identity::ServiceAccount)
    }

    /// [`Env::booster`] as cluster-admin, for a scenario that cannot pass with the shipped
    /// RBAC for a reason of the test's own (never to hide a right the product lacks):
    /// prints `e2e <scenario>: runs as cluster-admin: <why>`.
    pub fn booster_as_admin(
        &self,
        bin: &Path,
        name: &str,
        args: &[&str],
        why: &str,
    ) -> Result<Booster, String> {
        // libtest runs each test on a thread named after it; a scenario's body runs there.
        let current = std::thread::current();
        let scenario = current
            .name()
            .filter(|n| *n != "main")
            .map(|n| n.rsplit("::").next().unwrap_or(n).to_string())
            .unwrap_or_else(|| name.to_string());
        println!("e2e {scenario}: runs as cluster-admin: {why}");
        let kubeconfig = self.cp.kubeconfig.clone();
        Booster::start_with(
            bin,
            self,
            name,
            args,
            &kubeconfig,
            &[],
            Identity::ClusterAdmin,
        )
    }
}

/// The booster binary as a process, with its log in the scenario's directory.
pub struct Booster {
    child: Option<Child>,
    /// Its /metrics port.
    pub port: u16,
    /// Its log.
    pub log: PathBuf,
}

impl Drop for Booster {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Booster {
    fn start(bin: &Path, env: &Env, name: &str, extra: &[&str]) -> Result<Booster, String> {
        Self::start_with(
            bin,
            env,
            name,
            extra,
            &env.sa_kubeconfig,
            &[],
            Identity::ServiceAccount,
        )
    }

    fn start_with(
        bin: &Path,
        env: &Env,
        name: &str,
        extra: &[&str],
        kubeconfig: &Path,
        vars: &[(&str, &str)],
        identity: Identity,
    ) -> Result<Booster, String> {
        if let Ok(mut ids) = env.ran_as.lock() {
            ids.insert(identity);
        }
        let port = free_port();
        let log = env.cp.dir.join(format!("{name}.log"));
        let (out, err) = log_to(&log)?;
        let kubeconfig = kubeconfig.display().to_string();
        let port_s = port.to_string();
        let mut args: Vec<&str> = vec![
            "--connection-mode",
            "kubectl",
            "--kubeconfig",
            &kubeconfig,
            "--aws-region",
            "eu-west-1",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            &port_s,
        ];
        // The scenario's pace and moto, unless the caller sets the flag.
        for (flag, value) in [
            ("--aws-endpoint-url", env.moto.url.as_str()),
            ("--resync", "2s"),
            ("--time-between-drains", "2s"),
            ("--drain-timeout", "60s"),
            ("--replacement-wait", "90s"),
            ("--max-time-consider-new-node", "2m"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let child = Command::new(bin)
            .args(&args)
            .envs(crate::moto::TEST_AWS_ENV)
            // Its Lease identity.
            .env("POD_NAME", name)
            .env("RUST_LOG", "info,aws_spots_booster=debug,booster_k8s=debug")
            .envs(vars.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        Ok(Booster {
            child: Some(child),
            port,
            log,
        })
    }

    /// Raises of desired capacity it made (`SetDesiredCapacity` calls that succeeded).
    pub async fn raises(&self) -> f64 {
        self.metric(
            "spots_booster_actions_total",
            &["action=\"setDesired\"", "outcome=\"ok\""],
        )
        .await
    }

    /// Waits until /readyz answers 200.
    pub async fn wait_ready(&self, secs: u64) -> Result<(), String> {
        let port = self.port;
        eventually(secs, "booster ready", || async move {
            matches!(http_get(port, "/readyz").await, Some((200, _)))
        })
        .await
    }

    /// Its /metrics text, empty when it does not answer.
    pub async fn metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// The sum of the samples of `name` whose labels contain every `labels` pair.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        metric_sum(&self.metrics().await, name, labels)
    }

    /// Stops it with SIGSTOP until the guard is dropped.
    pub fn freeze(&self) -> Result<crate::control_plane::Frozen, String> {
        let pid = self.child.as_ref().map(Child::id).ok_or("not running")?;
        crate::control_plane::Frozen::pid(pid)
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as the kubelet stops an evicted pod's container; waits up to `secs` for the
    /// exit and returns its status (`None`: still running, then killed).
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = crate::control_plane::signal(c.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Kills it with SIGKILL (no clean-up of any kind).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

/// A world started with `opts` and one booster (`bin`, named `booster`) in it, ready;
/// `None` when the servers are not installed (the scenario is then skipped, and says so).
pub async fn with_booster(opts: Options, bin: &Path) -> Option<(Env, Booster)> {
    let env = Env::start(opts).await.expect("world")?;
    let booster = env.booster(bin, "booster", &[]).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    Some((env, booster))
}
