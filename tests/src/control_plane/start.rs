//! Starting the control plane: credentials, then etcd, kube-apiserver (and its admin
//! kubeconfig), then kube-controller-manager and kube-scheduler when asked, in that order.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::process::{free_port, spawn, two_ports, wait_listening};
use super::{kubeconfig_text, servers_dir, ControlPlane, ADMIN_TOKEN, BOOSTER_TOKEN, BOOSTER_USER};

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
        // Made before anything starts: when a step fails, dropping it stops the servers
        // already running and removes the directory.
        let mut cp = ControlPlane {
            children: Vec::new(),
            apiserver: (PathBuf::new(), Vec::new()),
            url: String::new(),
            kubeconfig: dir.join("admin.kubeconfig"),
            dir: dir.clone(),
        };
        write_credentials(&dir)?;
        let (etcd_port, etcd) = start_etcd(&bin, &dir, etcd_extra)?;
        cp.children.push(("etcd".into(), etcd));
        cp.start_apiserver(&bin, etcd_port, apiserver_extra)?;
        if let Some(controllers) = controllers {
            cp.start_controller_manager(&bin, controllers)?;
        }
        if scheduler {
            cp.start_scheduler(&bin)?;
        }
        Ok(cp)
    }

    /// Starts kube-apiserver on a free port against etcd at `etcd_port`, writes the admin
    /// kubeconfig, and waits for the port.
    fn start_apiserver(
        &mut self,
        bin: &Path,
        etcd_port: u16,
        extra: &[&str],
    ) -> Result<(), String> {
        let api_port = free_port();
        let args = apiserver_args(&self.dir, etcd_port, api_port, extra);
        self.children.push((
            "kube-apiserver".into(),
            spawn(
                &bin.join("kube-apiserver"),
                &args,
                &self.dir.join("apiserver.log"),
            )?,
        ));
        self.apiserver = (bin.join("kube-apiserver"), args);
        self.url = format!("https://127.0.0.1:{api_port}");
        std::fs::write(&self.kubeconfig, kubeconfig_text(&self.url, ADMIN_TOKEN))
            .map_err(|e| e.to_string())?;
        wait_listening(
            api_port,
            "kube-apiserver",
            Duration::from_secs(60),
            self.children.last_mut().map(|(_, c)| c),
        )
    }

    /// Starts kube-controller-manager with `controllers` (its `--controllers` value).
    fn start_controller_manager(&mut self, bin: &Path, controllers: &str) -> Result<(), String> {
        let args: Vec<String> = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--controllers={controllers}"),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()),
            "--use-service-account-credentials=false".into(),
            "-v=1".into(),
        ];
        self.children.push((
            "kube-controller-manager".into(),
            spawn(
                &bin.join("kube-controller-manager"),
                &args,
                &self.dir.join("kcm.log"),
            )?,
        ));
        Ok(())
    }

    /// Starts kube-scheduler.
    fn start_scheduler(&mut self, bin: &Path) -> Result<(), String> {
        let args: Vec<String> = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()),
            "-v=1".into(),
        ];
        self.spawn_server("kube-scheduler", &bin.join("kube-scheduler"), &args)
    }
}

/// `f` in `dir`, as a flag value.
fn path_in(dir: &Path, f: &str) -> String {
    dir.join(f).display().to_string()
}

/// The service-account signing key pair (`sa.key`, `sa.pub`) and the static tokens
/// (`tokens.csv`: [`ADMIN_TOKEN`], [`BOOSTER_TOKEN`]).
fn write_credentials(dir: &Path) -> Result<(), String> {
    let p = |f: &str| path_in(dir, f);
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
    .map_err(|e| e.to_string())
}

/// Starts etcd and waits for its client port; returns that port and the process.
fn start_etcd(bin: &Path, dir: &Path, extra: &[&str]) -> Result<(u16, Child), String> {
    // A port can be taken by someone else between free_port and etcd's bind: then
    // etcd exits at once, and another pair is tried with a fresh data directory.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (client_port, peer_port) = two_ports();
        let data = format!("etcd-{attempt}");
        let etcd_args = etcd_args(dir, &data, client_port, peer_port, extra);
        let mut child = spawn(&bin.join("etcd"), &etcd_args, &dir.join("etcd.log"))?;
        match wait_listening(
            client_port,
            "etcd",
            Duration::from_secs(30),
            Some(&mut child),
        ) {
            Ok(()) => return Ok((client_port, child)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                if attempt >= 3 {
                    return Err(format!("{e} (attempt {attempt}; see etcd.log)"));
                }
                eprintln!("{e}; starting etcd again on other ports");
            }
        }
    }
}

/// etcd's flags: a one-member cluster on loopback, data in `data` under `dir`.
fn etcd_args(
    dir: &Path,
    data: &str,
    client_port: u16,
    peer_port: u16,
    extra: &[&str],
) -> Vec<String> {
    [
        "--name=test".to_string(),
        format!("--data-dir={}", path_in(dir, data)),
        format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
        format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
        format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"),
        "--unsafe-no-fsync=true".to_string(),
        "--log-level=warn".to_string(),
    ]
    .into_iter()
    .chain(extra.iter().map(|a| a.to_string()))
    .collect()
}

/// kube-apiserver's flags; `{dir}` in an `extra` flag is `dir`.
fn apiserver_args(dir: &Path, etcd_port: u16, api_port: u16, extra: &[&str]) -> Vec<String> {
    let p = |f: &str| path_in(dir, f);
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
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
        extra
            .iter()
            .map(|a| a.replace("{dir}", &dir.display().to_string())),
    )
    .collect()
}
